/**
 * The protocol's messages, field for field the `SecAggMessage` event of libs/contracts (`fl-secagg.avsc`) without
 * the envelope (`eventId`, `createdAt`, added by whoever sends it). libs/fl may not import libs/contracts, so the
 * shape is repeated here; a contract test in tools/cli encodes every message of a round with the Avro schema.
 * Bytes are `Uint8Array` (avsc's `Buffer` is one).
 */
import { createHash } from 'node:crypto';

export const SECAGG_PHASES = [
  'ADVERTISE_KEYS',
  'SHARE_KEYS',
  'MASKED_INPUT',
  'CONSISTENCY_CHECK',
  'UNMASKING',
] as const;
export type SecAggPhase = (typeof SECAGG_PHASES)[number];

/** The protocol parameters of one instance (one round, or one bucket of a round). */
export interface SecAggRoundConfig {
  /** Shamir threshold t: shares needed out of each neighbourhood (a client and its neighbours). */
  threshold: number;
  /** Degree k of the graph; n − 1 is the complete graph. */
  neighbours: number;
  /** 32-byte seed of the graph's permutation. */
  graphSeed: Uint8Array;
  bound: number;
  precisionBits: number;
  modulusBits: number;
  layerLengths: number[];
}

export interface SecAggAdvertisedKeys {
  cipherPublicKey: Uint8Array;
  maskPublicKey: Uint8Array;
  keySignature: Uint8Array;
}

export interface SecAggMessage {
  tenant: string;
  roundId: string;
  /** Null when the aggregator sends it. */
  senderDeviceId: string | null;
  phase: SecAggPhase;
  participants: string[];
  cipherPublicKey: Uint8Array | null;
  maskPublicKey: Uint8Array | null;
  keySignature: Uint8Array | null;
  encryptedShares: Record<string, Uint8Array>;
  maskedInput: Uint8Array | null;
  selfMaskShares: Record<string, Uint8Array>;
  maskKeyShares: Record<string, Uint8Array>;
  config: SecAggRoundConfig | null;
  bucket: number;
  advertisedKeys: Record<string, SecAggAdvertisedKeys>;
  selfMaskCommitment: Uint8Array | null;
  consistencySignature: Uint8Array | null;
  survivorSignatures: Record<string, Uint8Array>;
  dropped: string[];
}

/** A message the server sends, and to whom (the transport maps it to the device's topic). */
export interface Outbound {
  to: string;
  message: SecAggMessage;
}

/** Identifies one instance of the protocol. */
export interface SecAggSession {
  tenant: string;
  roundId: string;
  /** Bucket index in the bucketed robust mode, 0 otherwise. */
  bucket?: number;
}

/** A message with every optional field at its schema default. */
export function emptyMessage(
  session: SecAggSession,
  phase: SecAggPhase,
  senderDeviceId: string | null,
): SecAggMessage {
  return {
    tenant: session.tenant,
    roundId: session.roundId,
    senderDeviceId,
    phase,
    participants: [],
    cipherPublicKey: null,
    maskPublicKey: null,
    keySignature: null,
    encryptedShares: {},
    maskedInput: null,
    selfMaskShares: {},
    maskKeyShares: {},
    config: null,
    bucket: session.bucket ?? 0,
    advertisedKeys: {},
    selfMaskCommitment: null,
    consistencySignature: null,
    survivorSignatures: {},
    dropped: [],
  };
}

/**
 * Why a message was refused. Stable strings: services count them in metrics and dead letters.
 * - `wrong-round`: another tenant, round or bucket;
 * - `unknown-sender`: not a client of this instance (or a device message without a sender);
 * - `out-of-phase`: for a phase that is not the current one (late, early, or a second request);
 * - `replay`: the same message again (at-least-once delivery); no effect;
 * - `not-participant`: the sender dropped out (or was excluded) in an earlier phase;
 * - `equivocation`: a second, different message from the same sender in one phase (the sender is excluded),
 *   or key material that conflicts with what the sender advertised;
 * - `bad-signature`: a key or consistency signature that does not verify;
 * - `malformed`: wrong sizes, unexpected or missing entries;
 * - `bad-share`: a share ciphertext that does not decrypt under the agreed key;
 * - `inconsistent`: a survivor list that contradicts what this client saw;
 * - `both-kinds`: the server asked for both the self-mask share and the key share of one client;
 * - `below-threshold`: fewer than t clients (or signatures) left for this client to go on safely;
 * - `bad-config`: round parameters that are invalid or unsafe (e.g. a modulus that lets the sum wrap);
 * - `bad-input`: this client's own update is invalid (shape, bound, NaN);
 * - `aborted`: this client already left the round.
 */
export type SecAggRefusalReason =
  | 'wrong-round'
  | 'unknown-sender'
  | 'out-of-phase'
  | 'replay'
  | 'not-participant'
  | 'equivocation'
  | 'bad-signature'
  | 'malformed'
  | 'bad-share'
  | 'inconsistent'
  | 'both-kinds'
  | 'below-threshold'
  | 'bad-config'
  | 'bad-input'
  | 'aborted';

export type Verdict = { accepted: true } | { accepted: false; reason: SecAggRefusalReason; message: string };

/** The server could not finish the round: too few clients or shares, or a client's shares did not reconstruct. */
export class SecAggAbortError extends Error {
  override readonly name = 'SecAggAbortError';
  constructor(
    readonly reason: 'below-threshold' | 'equivocation',
    readonly phase: SecAggPhase,
    message: string,
  ) {
    super(message);
  }
}

/**
 * SHA-256 over a canonical encoding of every field (maps in key order): equal digests mean the same message, so a
 * receiver tells a replay (same digest) from equivocation (same sender and phase, another digest).
 */
export function messageDigest(m: SecAggMessage): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  const put = (part: string | Uint8Array | null): void => {
    if (part === null) {
      len.writeInt32BE(-1);
      h.update(len);
      return;
    }
    const bytes = typeof part === 'string' ? Buffer.from(part) : part;
    len.writeInt32BE(bytes.length);
    h.update(len);
    h.update(bytes);
  };
  const list = (items: readonly string[]): void => {
    put(String(items.length));
    for (const i of items) put(i);
  };
  const map = <V>(record: Record<string, V>, each: (v: V) => void): void => {
    const keys = Object.keys(record).sort();
    list(keys);
    for (const k of keys) each(record[k]!);
  };
  put(m.tenant);
  put(m.roundId);
  put(String(m.bucket));
  put(m.senderDeviceId);
  put(m.phase);
  list(m.participants);
  put(m.cipherPublicKey);
  put(m.maskPublicKey);
  put(m.keySignature);
  map(m.encryptedShares, put);
  put(m.maskedInput);
  map(m.selfMaskShares, put);
  map(m.maskKeyShares, put);
  if (m.config === null) put(null);
  else {
    const c = m.config;
    list([c.threshold, c.neighbours, c.bound, c.precisionBits, c.modulusBits].map(String));
    put(c.graphSeed);
    list(c.layerLengths.map(String));
  }
  map(m.advertisedKeys, (k) => {
    put(k.cipherPublicKey);
    put(k.maskPublicKey);
    put(k.keySignature);
  });
  put(m.selfMaskCommitment);
  put(m.consistencySignature);
  map(m.survivorSignatures, put);
  list(m.dropped);
  return h.digest('hex');
}
