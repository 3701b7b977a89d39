/**
 * Every client and the server of one protocol instance in one process, messages passed by hand: the command-line
 * oracle (`edgefl secagg run`), the benchmark and the tests drive the real state machines through it. Device
 * identities are Ed25519 key pairs made here (from `random`, so a seeded run is reproducible).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SecAggClient, type ClientStep } from './client.js';
import {
  SecAggAbortError,
  SECAGG_PHASES,
  type Outbound,
  type SecAggMessage,
  type SecAggPhase,
  type SecAggRefusalReason,
  type SecAggSession,
} from './messages.js';
import {
  defaultRandomBytes,
  ed25519Signer,
  ed25519Verifier,
  type RandomBytes,
  type SignatureVerifier,
} from './primitives.js';
import { planSecAgg } from './protocol.js';
import { SecAggServer, type SecAggResult } from './server.js';

/** The command line's names of the phases. */
export const SECAGG_PHASE_NAMES: Record<string, SecAggPhase> = {
  'advertise-keys': 'ADVERTISE_KEYS',
  'share-keys': 'SHARE_KEYS',
  'masked-input': 'MASKED_INPUT',
  consistency: 'CONSISTENCY_CHECK',
  unmask: 'UNMASKING',
};

export interface InProcessClient {
  id: string;
  /** The update, or a function that makes it when the client needs it (large benchmarks). */
  weights: readonly Float32Array[] | (() => readonly Float32Array[]);
}

const weightsOf = (c: InProcessClient): readonly Float32Array[] =>
  typeof c.weights === 'function' ? c.weights() : c.weights;

export interface InProcessRoundOptions extends SecAggSession {
  clients: readonly InProcessClient[];
  threshold: number;
  bound?: number;
  neighbours?: number;
  precisionBits?: number;
  /** Clients that send nothing from this phase on. */
  drops?: Partial<Record<SecAggPhase, readonly string[]>>;
  random?: RandomBytes;
  /** Size of a message on the wire (e.g. its Avro encoding); without it no bytes are counted. */
  messageBytes?: (message: SecAggMessage) => number;
  /** A monotonic clock in ms (e.g. `performance.now`); without it no time is measured. */
  clock?: () => number;
  /**
   * Sees every message in flight ('down' to a client, 'up' to the server) and returns what is delivered instead
   * (tests use it to replay, drop or alter messages).
   */
  intercept?: (message: SecAggMessage, direction: 'up' | 'down', to: string) => SecAggMessage[];
}

export interface PhaseCost {
  /** Clients that took part (received the phase's request). */
  clients: number;
  /** Mean bytes a taking-part client received / sent in the phase. */
  receivedPerClient: number;
  sentPerClient: number;
  /** Mean client compute time (ms) and total server compute time (ms) in the phase (replies are delivered as made). */
  clientMs: number;
  serverMs: number;
}

export interface InProcessRound {
  result: SecAggResult | null;
  abort: SecAggAbortError | null;
  costs: Record<SecAggPhase, PhaseCost>;
  refusals: Array<{ by: string; phase: SecAggPhase; reason: SecAggRefusalReason; message: string }>;
  precisionBits: number;
  modulusBits: number;
}

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function deviceKeys(ids: readonly string[], random: RandomBytes): Map<string, KeyObject> {
  return new Map(
    ids.map((id) => [
      id,
      createPrivateKey({
        key: Buffer.concat([ED25519_PKCS8_PREFIX, random(32)]),
        format: 'der',
        type: 'pkcs8',
      }),
    ]),
  );
}

/** Runs one round (or one bucket) with every client in this process. */
export async function runSecAggInProcess(options: InProcessRoundOptions): Promise<InProcessRound> {
  const random = options.random ?? defaultRandomBytes;
  const ids = options.clients.map((c) => c.id);
  const session: SecAggSession = {
    tenant: options.tenant,
    roundId: options.roundId,
    bucket: options.bucket ?? 0,
  };
  const config = planSecAgg({
    clients: ids,
    threshold: options.threshold,
    layerLengths: options.clients[0] ? weightsOf(options.clients[0]).map((l) => l.length) : [],
    bound: options.bound,
    neighbours: options.neighbours,
    precisionBits: options.precisionBits,
    random,
  });
  const secret = deviceKeys(ids, random);
  const verify: SignatureVerifier = ed25519Verifier(
    new Map([...secret].map(([id, key]) => [id, createPublicKey(key)])),
  );
  const server = new SecAggServer({ ...session, clients: ids, config, verify });
  const clients = new Map(
    options.clients.map((c) => [
      c.id,
      new SecAggClient({
        ...session,
        deviceId: c.id,
        sign: ed25519Signer(secret.get(c.id)!),
        verify,
        input: () => weightsOf(c),
        random,
      }),
    ]),
  );
  const size = options.messageBytes;
  const clock = options.clock;
  const pass = options.intercept ?? ((m: SecAggMessage) => [m]);
  const offline = new Set<string>();
  const refusals: InProcessRound['refusals'] = [];
  const costs = {} as Record<SecAggPhase, PhaseCost>;
  let outbound: Outbound[] = server.start();
  let abort: SecAggAbortError | null = null;
  for (const phase of SECAGG_PHASES) {
    for (const id of options.drops?.[phase] ?? []) offline.add(id);
    const received = new Map<string, number>();
    const sent = new Map<string, number>();
    let clientMs = 0;
    let serverMs = 0;
    const deliver = async (reply: SecAggMessage): Promise<void> => {
      const t0 = clock?.() ?? 0;
      const verdict = await server.receive(reply);
      serverMs += (clock?.() ?? 0) - t0;
      if (!verdict.accepted)
        refusals.push({ by: 'server', phase, reason: verdict.reason, message: verdict.message });
    };
    for (const { to, message } of outbound) {
      if (offline.has(to)) continue;
      for (const m of pass(message, 'down', to)) {
        received.set(to, (received.get(to) ?? 0) + (size ? size(m) : 0));
        const t0 = clock?.() ?? 0;
        const step: ClientStep = await clients.get(to)!.receive(m);
        clientMs += (clock?.() ?? 0) - t0;
        if (!step.ok) {
          refusals.push({ by: to, phase, reason: step.reason, message: step.message });
          continue;
        }
        for (const reply of step.send) {
          sent.set(to, (sent.get(to) ?? 0) + (size ? size(reply) : 0));
          for (const m of pass(reply, 'up', 'server')) await deliver(m);
        }
      }
    }
    const t0 = clock?.() ?? 0;
    try {
      outbound = await server.endPhase();
    } catch (error) {
      if (!(error instanceof SecAggAbortError)) throw error;
      abort = error;
    }
    serverMs += (clock?.() ?? 0) - t0;
    const taking = received.size;
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    costs[phase] = {
      clients: taking,
      receivedPerClient: taking ? total(received) / taking : 0,
      sentPerClient: taking ? total(sent) / taking : 0,
      clientMs: taking ? clientMs / taking : 0,
      serverMs,
    };
    if (abort) break;
  }
  return {
    result: abort ? null : server.result(),
    abort,
    costs,
    refusals,
    precisionBits: config.precisionBits,
    modulusBits: config.modulusBits,
  };
}
