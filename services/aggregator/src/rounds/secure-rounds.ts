import { randomBytes } from 'node:crypto';
import { fromSecAggEvent, toSecAggEvent, type SecAggMessage as SecAggEvent } from '@edgefl/contracts';
import {
  InvalidParameterError,
  lanesPerCoordinate,
  planSecAgg,
  SecAggAbortError,
  secAggBuckets,
  SECAGG_PHASES,
  SecAggServer,
  type Outbound,
  type SecAggPhase,
  type SecAggResult,
  type SecAggRoundConfig,
} from '@edgefl/fl';
import { verifyEd25519 } from '@edgefl/keys';
import type { Logger } from 'pino';
import { impossible, type RoundSettings } from './round-settings.js';
import type { RoundRow, RoundStore } from './round-store.js';
import type { RoundMetrics } from './rounds.metrics.js';

/** A bucket's protocol parameters as stored (JSON: the graph seed in base64; it is public, clients receive it). */
export interface StoredConfig extends Omit<SecAggRoundConfig, 'graphSeed'> {
  graphSeed: string;
}

export interface BucketState {
  bucket: number;
  /** U0 of this instance, sorted. */
  clients: string[];
  config: StoredConfig;
  state: SecAggPhase | 'DONE' | 'ABORTED';
  /** Who had not answered when each phase ended (dropped out there). */
  dropouts: Partial<Record<SecAggPhase, string[]>>;
  /** U3: whose input is in this bucket's sum (set when the bucket completed). */
  survivors: string[] | null;
  /** Why the bucket aborted (the server learnt nothing of it). */
  abort: string | null;
}

/**
 * The durable part of a secure-aggregation round (table `secagg_rounds`): the plan (buckets, configs), the phase and
 * its deadline, per-phase dropouts, survivors and refusals by reason. The protocol's secrets-in-transit (the
 * running masked sum, the sealed shares being forwarded, the unmasking shares) are kept in memory only.
 */
export interface SecAggState {
  phase: SecAggPhase | 'DONE' | 'ABORTED';
  phaseStartedAt: number;
  phaseDeadline: number;
  buckets: BucketState[];
  /** Device messages refused, by reason (libs/fl's refusal reasons and the intake's own). */
  refusals: Record<string, number>;
  /** Device messages accepted. */
  accepted: number;
}

/** Why a device's secure-aggregation message is refused before the protocol sees it (besides libs/fl's reasons). */
export type SecAggIntakeReason =
  | 'unknown-round'
  | 'wrong-tenant'
  | 'not-secure-round'
  | 'round-closed'
  | 'unselected-device'
  | 'unknown-bucket'
  | 'oversized';

export interface SecureOutcome {
  /** Buckets that completed, in bucket order. */
  results: SecAggResult[];
  state: SecAggState;
}

const toConfig = (c: StoredConfig): SecAggRoundConfig => ({
  ...c,
  graphSeed: Buffer.from(c.graphSeed, 'base64'),
});

/**
 * Plans a secure-aggregation round: one protocol instance over the selected devices, or (bucketed robust mode) one
 * per random bucket. Settings the protocol cannot run with (a threshold above a neighbourhood, a bound that makes
 * the ring wrap, …) are refused with 400 `bad-secure-aggregation` before the round opens.
 */
export function planSecureRound(settings: RoundSettings, shape: readonly number[], now: number): SecAggState {
  const sa = settings.secureAggregation!;
  const ids = [...settings.selectedDevices].sort();
  let groups: string[][];
  try {
    groups = sa.bucketSize ? secAggBuckets(ids, sa.bucketSize, randomBytes(32)) : [ids];
    // a last bucket too small to hide anyone in joins the one before it
    if (groups.length > 1 && groups[groups.length - 1]!.length < 3) {
      const last = groups.pop()!;
      groups[groups.length - 1] = [...groups[groups.length - 1]!, ...last].sort();
    }
    const buckets = groups.map((clients, bucket): BucketState => {
      const config = planSecAgg({
        clients,
        threshold: sa.threshold,
        layerLengths: shape,
        bound: sa.bound,
        ...(sa.neighbours !== null ? { neighbours: sa.neighbours } : {}),
        ...(sa.precisionBits !== null ? { precisionBits: sa.precisionBits } : {}),
      });
      return {
        bucket,
        clients,
        config: { ...config, graphSeed: Buffer.from(config.graphSeed).toString('base64') },
        state: 'ADVERTISE_KEYS',
        dropouts: {},
        survivors: null,
        abort: null,
      };
    });
    return {
      phase: 'ADVERTISE_KEYS',
      phaseStartedAt: now,
      phaseDeadline: now + sa.phaseTimeoutMs,
      buckets,
      refusals: {},
      accepted: 0,
    };
  } catch (error) {
    if (error instanceof InvalidParameterError)
      throw impossible('bad-secure-aggregation', `secure aggregation: ${error.message}`);
    throw error;
  }
}

interface Live {
  servers: SecAggServer[];
  state: SecAggState;
}

/** Upper bound on a device message's bytes: its masked input plus k + 1 shares and keys, with room to spare. */
function byteLimit(config: SecAggRoundConfig): number {
  const coordinates = config.layerLengths.reduce((a, b) => a + b, 0);
  return coordinates * lanesPerCoordinate(config.modulusBits) * 4 + (config.neighbours + 1) * 512 + 65_536;
}

function bytesOf(e: SecAggEvent): number {
  const len = (b: Uint8Array | null) => b?.length ?? 0;
  const map = (m: Record<string, Uint8Array>) =>
    Object.entries(m).reduce((a, [k, v]) => a + k.length + v.length, 0);
  return (
    len(e.cipherPublicKey) +
    len(e.maskPublicKey) +
    len(e.keySignature) +
    len(e.maskedInput) +
    len(e.selfMaskCommitment) +
    len(e.consistencySignature) +
    map(e.encryptedShares) +
    map(e.selfMaskShares) +
    map(e.maskKeyShares) +
    map(e.survivorSignatures) +
    e.participants.reduce((a, p) => a + p.length, 0) +
    e.dropped.reduce((a, p) => a + p.length, 0) +
    Object.keys(e.advertisedKeys).length * 256
  );
}

/**
 * The server side of secure aggregation in the aggregator: one libs/fl `SecAggServer` per bucket, driven by the
 * device messages of `edgefl.fl.secagg.v1` and by the engine's tick, which ends a phase when every device still in
 * it has answered or at the phase's deadline (`secureAggregation.phaseTimeoutMs`), and publishes the next phase's
 * requests, each addressed to its device (`recipientDeviceId`; the gateway delivers it to that device only). The
 * survivor set of each phase travels to the devices in the next phase's requests (U3 in CONSISTENCY_CHECK and
 * UNMASKING) and is stored (report, RoundResult participants).
 *
 * A restart mid-protocol aborts the round (the engine finds a stored phase and no live instance): resuming would
 * mean keeping the running masked sum and the shares in flight on disk, and asking devices again for a phase they
 * answered, which the protocol forbids (a server that asks twice may learn both kinds of share of one client).
 */
export class SecureRounds {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly store: RoundStore,
    private readonly publish: (events: SecAggEvent[]) => Promise<void>,
    private readonly metrics: RoundMetrics,
    private readonly logger: Logger,
  ) {}

  /** Makes the round's protocol instances (synchronously: the tick must see the round live from the start). */
  prepare(round: RoundRow, state: SecAggState): void {
    const servers = state.buckets.map(
      (b) =>
        new SecAggServer({
          tenant: round.tenant,
          roundId: round.roundId,
          bucket: b.bucket,
          clients: b.clients,
          config: toConfig(b.config),
          verify: (deviceId, bytes, signature) => {
            const key = this.store.deviceKey(round.tenant, deviceId);
            if (!key) return false;
            try {
              return verifyEd25519(Buffer.from(key.publicKey, 'base64url'), bytes, signature);
            } catch {
              return false;
            }
          },
        }),
    );
    this.live.set(round.roundId, { servers, state });
  }

  /** Publishes the ADVERTISE_KEYS requests (after RoundOpened). */
  async begin(roundId: string): Promise<void> {
    const live = this.live.get(roundId);
    if (!live) return;
    await this.send(live.servers.flatMap((s) => s.start()));
  }

  isLive(roundId: string): boolean {
    return this.live.has(roundId);
  }

  forget(roundId: string): void {
    this.live.delete(roundId);
  }

  /** One device message from the bus. Refused messages are counted by reason and change nothing. */
  async receive(e: SecAggEvent): Promise<void> {
    if (e.senderDeviceId === null) return; // the aggregator's own requests, read back from the topic
    const sender = e.senderDeviceId;
    const round = this.store.round(e.roundId);
    const live = this.live.get(e.roundId);
    const refuse = (reason: string, detail: string): void => {
      this.metrics.secAggMessages.inc({ phase: e.phase, verdict: 'refused', reason });
      if (live && round?.tenant === e.tenant)
        live.state.refusals[reason] = (live.state.refusals[reason] ?? 0) + 1;
      this.logger.warn(
        { roundId: e.roundId, phase: e.phase, reason, detail },
        'secure-aggregation message refused',
      );
    };
    if (!round) return refuse('unknown-round', `no round ${e.roundId}`);
    if (round.tenant !== e.tenant)
      return refuse('wrong-tenant', `round ${e.roundId} belongs to another tenant`);
    if (round.settings.privacyMode !== 'secure-aggregation')
      return refuse('not-secure-round', `round ${e.roundId} is not a secure-aggregation round`);
    if (round.state !== 'OPEN' || !live) return refuse('round-closed', `round ${e.roundId} is not running`);
    if (!round.settings.selectedDevices.includes(sender))
      return refuse('unselected-device', `${sender} was not selected`);
    const server = live.servers[e.bucket];
    if (!server) return refuse('unknown-bucket', `round ${e.roundId} has no bucket ${e.bucket}`);
    const limit = byteLimit(server.config);
    if (bytesOf(e) > limit) return refuse('oversized', `more than ${limit} bytes`);
    const verdict = await server.receive(fromSecAggEvent(e));
    if (!verdict.accepted) return refuse(verdict.reason, verdict.message);
    live.state.accepted++;
    this.metrics.secAggMessages.inc({ phase: e.phase, verdict: 'accepted', reason: 'none' });
  }

  /**
   * Ends the current phase when it is due. Returns null while the protocol runs, `restarted` when this process
   * holds no instance of a round that has a stored phase, and the outcome when every bucket is done or aborted.
   */
  async step(round: RoundRow, now: number): Promise<null | 'restarted' | SecureOutcome> {
    const live = this.live.get(round.roundId);
    if (!live) return 'restarted';
    const { state } = live;
    const running = live.servers.filter((s) => s.state !== 'DONE' && s.state !== 'ABORTED');
    const due = now >= state.phaseDeadline || running.every((s) => s.pending().length === 0);
    if (running.length > 0 && !due) return null;
    const phase = state.phase as SecAggPhase;
    const out: Outbound[] = [];
    for (const [i, server] of live.servers.entries()) {
      const bucket = state.buckets[i]!;
      if (server.state === 'DONE' || server.state === 'ABORTED') continue;
      const dropped = server.pending();
      bucket.dropouts[phase] = dropped;
      if (dropped.length > 0) this.metrics.secAggDropouts.inc({ phase }, dropped.length);
      try {
        out.push(...(await server.endPhase()));
      } catch (error) {
        if (!(error instanceof SecAggAbortError)) throw error;
        bucket.abort = `${error.reason} in ${error.phase}: ${error.message}`;
        this.logger.warn(
          { roundId: round.roundId, bucket: i, reason: error.reason },
          'secure-aggregation bucket aborted',
        );
      }
      const after = server.state as BucketState['state']; // endPhase moved it on
      bucket.state = after;
      if (after === 'DONE') bucket.survivors = server.result().survivors;
    }
    const index = SECAGG_PHASES.indexOf(phase);
    const finished = live.servers.every((s) => s.state === 'DONE' || s.state === 'ABORTED');
    state.phase = finished
      ? live.servers.some((s) => s.state === 'DONE')
        ? 'DONE'
        : 'ABORTED'
      : SECAGG_PHASES[index + 1]!;
    state.phaseStartedAt = now;
    state.phaseDeadline = now + round.settings.secureAggregation!.phaseTimeoutMs;
    this.store.saveSecAggState(round.roundId, state);
    if (!finished) {
      await this.send(out);
      return null;
    }
    const results = live.servers.filter((s) => s.state === 'DONE').map((s) => s.result());
    return { results, state };
  }

  /** The stored state, with the live refusal counts when the round runs in this process. */
  state(roundId: string): SecAggState | null {
    return this.live.get(roundId)?.state ?? this.store.secAggState(roundId);
  }

  private async send(out: Outbound[]): Promise<void> {
    if (out.length === 0) return;
    const now = Date.now();
    await this.publish(
      out.map(({ to, message }) => toSecAggEvent(message, { recipientDeviceId: to, createdAt: now })),
    );
  }
}
