import {
  fromSecAggEvent,
  toSecAggEvent,
  type MessageAck,
  type SecAggMessage as SecAggEvent,
} from '@edgefl/contracts/edge';
import { SecAggClient, type RandomBytes, type SecAggRefusalReason, type SignatureVerifier } from '@edgefl/fl';
import { verifyEd25519 } from '@edgefl/keys';
import { DeviceError } from '../errors.js';
import type { SecAggChannel, SecureAggregationClient, SecureAggregationRound } from './federated-client.js';

/** Where a device finds another device's registered Ed25519 public key (raw 32 bytes), or null when unknown. */
export type PeerKeyDirectory = (deviceId: string) => Uint8Array | null | Promise<Uint8Array | null>;

export interface SecAggParticipantOptions {
  /**
   * The public-key directory the protocol's signatures are checked against (Bonawitz et al. 2017 assume a PKI: a
   * client must not take its neighbours' keys from the server it guards against).
   */
  peerKeys: PeerKeyDirectory;
  /** Secret randomness (default node:crypto); a seeded DRBG only for tests. */
  random?: RandomBytes;
}

/** What one device saw in one round: the aggregator requests it refused, by reason (nothing else is kept). */
export interface SecAggParticipation {
  refused: Partial<Record<SecAggRefusalReason, number>>;
  /** Replies the gateway refused (its MessageAck), by error code. */
  nacked: Record<string, number>;
}

/**
 * The client side of secure aggregation on a device: libs/fl's `SecAggClient` state machine driven by the
 * aggregator's requests on the device's `secagg` channel, each reply sent with QoS 1 and acknowledged by the
 * gateway. The update is computed only when the aggregator asks for the masked input (training runs inside that
 * phase, as in Flower's SecAgg+ workflow), every coordinate clamped to the round's bound [-B, B] (after clipping and
 * local DP noise: post-processing, so the DP guarantee holds). A request the state machine refuses (replayed,
 * out of phase, forged, inconsistent) is counted and changes nothing; one that makes the client leave the round
 * (a misbehaving aggregator, too few neighbours) ends the participation with that reason.
 */
export class SecAggParticipant implements SecureAggregationClient {
  readonly #o: SecAggParticipantOptions;
  readonly #verify: SignatureVerifier;
  /** The last round's refusals and nacks (for logs and tests). */
  last: SecAggParticipation = { refused: {}, nacked: {} };

  constructor(options: SecAggParticipantOptions) {
    this.#o = options;
    this.#verify = async (deviceId, bytes, signature) => {
      const key = await options.peerKeys(deviceId);
      if (!key) return false;
      try {
        return verifyEd25519(key, bytes, signature);
      } catch {
        return false;
      }
    };
  }

  participate(
    round: SecureAggregationRound,
    update: () => Promise<readonly Float32Array[]>,
    channel: SecAggChannel,
    signal: AbortSignal,
  ): Promise<MessageAck> {
    const stats: SecAggParticipation = { refused: {}, nacked: {} };
    this.last = stats;
    let client: SecAggClient | null = null;
    let bound = Infinity;
    let maskedAck: MessageAck | null = null;
    let queue = Promise.resolve();
    return new Promise<MessageAck>((resolve, reject) => {
      let settled = false;
      const finish = (result: MessageAck | Error) => {
        if (settled) return;
        settled = true;
        unsubscribe();
        signal.removeEventListener('abort', onAbort);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const onAbort = () =>
        finish(new DeviceError('cancelled', 'the round ended before secure aggregation did'));
      const input = async (): Promise<readonly Float32Array[]> => {
        const layers = await update();
        // the fixed-point ring holds [-B, B]: clamp (a clipped update is inside already; noise may not be)
        return layers.map((l) => l.map((v) => (v > bound ? bound : v < -bound ? -bound : v)));
      };
      const handle = async (event: SecAggEvent): Promise<void> => {
        if (settled) return;
        const message = fromSecAggEvent(event);
        if (!client) {
          if (message.phase !== 'ADVERTISE_KEYS') {
            count(stats, 'out-of-phase');
            return;
          }
          // the bucket this device is in (the bucketed robust mode runs one instance per bucket)
          client = new SecAggClient({
            tenant: round.tenant,
            roundId: round.roundId,
            bucket: message.bucket,
            deviceId: round.deviceId,
            sign: (bytes) => channel.sign(bytes),
            verify: this.#verify,
            input,
            ...(this.#o.random ? { random: this.#o.random } : {}),
          });
          if (message.config) bound = message.config.bound;
        }
        const step = await client.receive(message);
        if (!step.ok) {
          count(stats, step.reason);
          if (client.state === 'aborted')
            finish(new DeviceError('rejected', `secure aggregation: ${step.reason}: ${step.message}`));
          return;
        }
        for (const reply of step.send) {
          const ack = await channel.send(toSecAggEvent(reply), signal);
          if (!ack.accepted)
            stats.nacked[ack.errorCode ?? 'refused'] = (stats.nacked[ack.errorCode ?? 'refused'] ?? 0) + 1;
          if (reply.phase === 'MASKED_INPUT') maskedAck = ack;
        }
        if (client.state === 'done') finish(maskedAck!);
      };
      const unsubscribe = channel.onMessage(round.roundId, (event) => {
        if (event.tenant !== round.tenant) return;
        if (event.recipientDeviceId !== null && event.recipientDeviceId !== round.deviceId) return;
        // one request at a time, in arrival order: the state machine is sequential
        queue = queue.then(
          () => handle(event),
          () => undefined,
        );
        queue.catch((error: unknown) => finish(error instanceof Error ? error : new Error(String(error))));
      });
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
  }
}

function count(stats: SecAggParticipation, reason: SecAggRefusalReason): void {
  stats.refused[reason] = (stats.refused[reason] ?? 0) + 1;
}
