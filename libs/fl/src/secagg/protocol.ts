/**
 * What the client and the server of one protocol instance derive alike from the round's parameters: the graph,
 * the domain-separation context, the byte strings that are signed, and the keys and streams of the masks.
 */
import { InvalidParameterError } from '../errors.js';
import { lanesPerCoordinate, planFixedPoint, requiredModulusBits } from './fixed-point.js';
import { defaultNeighbours, MAX_NEIGHBOURS, secAggGraph, type NeighbourGraph } from './graph.js';
import type { SecAggRoundConfig, SecAggSession } from './messages.js';
import {
  AEAD_OVERHEAD,
  aesCtrStream,
  agreeKey,
  copyBytes,
  defaultRandomBytes,
  frame,
  hkdf,
  sha256,
  type RandomBytes,
} from './primitives.js';

/** Bytes of a secret that is shared (the self-mask seed b_u and the X25519 private key s_sk). */
export const SECRET_BYTES = 32;
/** A Shamir share of a 32-byte secret: one byte per secret byte plus the x-coordinate. */
export const SHARE_BYTES = SECRET_BYTES + 1;
/** A holder's sealed pair of shares (b_u's and s_sk's) on the wire. */
export const SEALED_SHARES_BYTES = 2 * SHARE_BYTES + AEAD_OVERHEAD;
/** Largest update accepted (coordinates): a bound on what a hostile config can make a client allocate. */
export const MAX_COORDINATES = 1 << 26;

const PROTOCOL = 'edgefl-secagg/v1';

/**
 * The round parameters for `clients` (server side). `threshold` is an integer t ≥ 2 (shares out of each
 * neighbourhood of k + 1) or a fraction in (0, 1) of k + 1, rounded up. Active security (a malicious server) needs
 * t > 2(k + 1)/3, as in Bonawitz et al. 2017 §6.2; against an honest-but-curious server t > (k + 1)/2 suffices.
 */
export function planSecAgg(options: {
  clients: readonly string[];
  threshold: number;
  layerLengths: readonly number[];
  bound?: number;
  neighbours?: number;
  precisionBits?: number;
  graphSeed?: Uint8Array;
  random?: RandomBytes;
}): SecAggRoundConfig {
  const n = options.clients.length;
  const bound = options.bound ?? 1;
  let k = options.neighbours ?? defaultNeighbours(n);
  if (!Number.isInteger(k) || k < 1) throw new InvalidParameterError('neighbours must be a positive integer');
  if (k >= n - 1) k = n - 1;
  else if (k % 2 === 1) k += 1; // a Harary graph needs an even degree
  const size = k + 1;
  const t = options.threshold;
  let threshold: number;
  if (Number.isInteger(t)) threshold = t;
  else if (t > 0 && t < 1) threshold = Math.max(2, Math.ceil(t * size));
  else throw new InvalidParameterError('threshold must be an integer ≥ 2 or a fraction in (0, 1)');
  const fp = planFixedPoint({ clients: n, bound, precisionBits: options.precisionBits });
  const config: SecAggRoundConfig = {
    threshold,
    neighbours: k,
    graphSeed: options.graphSeed ?? (options.random ?? defaultRandomBytes)(32),
    bound,
    precisionBits: fp.precisionBits,
    modulusBits: fp.modulusBits,
    layerLengths: [...options.layerLengths],
  };
  const problem = configProblem(options.clients, config);
  if (problem) throw new InvalidParameterError(problem);
  return config;
}

/** Why a config cannot be used with these clients, or null. Both sides check it (a client trusts no server). */
export function configProblem(clients: readonly string[], c: SecAggRoundConfig): string | null {
  const n = clients.length;
  if (n < 2) return 'secure aggregation needs at least 2 clients';
  if (!Number.isInteger(c.neighbours) || c.neighbours < 1) return 'neighbours must be a positive integer';
  const size = Math.min(c.neighbours, n - 1) + 1;
  if (size - 1 > MAX_NEIGHBOURS) return `at most ${MAX_NEIGHBOURS} neighbours`;
  if (!Number.isInteger(c.threshold) || c.threshold < 2 || c.threshold > size)
    return `threshold must be an integer in [2, ${size}] (the neighbourhood has ${size} clients), got ${c.threshold}`;
  if (!(c.graphSeed instanceof Uint8Array) || c.graphSeed.length !== 32)
    return 'graphSeed must have 32 bytes';
  if (!Number.isFinite(c.bound) || c.bound <= 0) return 'bound must be a positive number';
  if (!Number.isInteger(c.precisionBits) || c.precisionBits < 16 || c.precisionBits > 52)
    return 'precisionBits must be an integer in [16, 52]';
  if (!Number.isInteger(c.modulusBits) || c.modulusBits > 64) return 'modulusBits must be an integer ≤ 64';
  let need: number;
  try {
    need = requiredModulusBits(n, c.bound, c.precisionBits);
  } catch (error) {
    return (error as Error).message;
  }
  if (c.modulusBits < need)
    return `modulusBits ${c.modulusBits} < ${need}: the sum of ${n} clients could wrap`;
  if (c.layerLengths.length === 0 || c.layerLengths.some((l) => !Number.isInteger(l) || l < 1))
    return 'layerLengths must be positive integers';
  if (c.layerLengths.reduce((a, b) => a + b, 0) > MAX_COORDINATES)
    return `an update has at most ${MAX_COORDINATES} coordinates`;
  return null;
}

/** One protocol instance as both sides see it. */
export class Instance {
  readonly tenant: string;
  readonly roundId: string;
  readonly bucket: number;
  /** U0, sorted. */
  readonly clients: readonly string[];
  readonly graph: NeighbourGraph;
  readonly coordinates: number;
  readonly lanes: 1 | 2;
  readonly context: Uint8Array;
  readonly salt: Uint8Array;

  readonly config: SecAggRoundConfig;

  constructor(session: SecAggSession, clients: readonly string[], config: SecAggRoundConfig) {
    const problem = configProblem(clients, config);
    if (problem) throw new InvalidParameterError(problem);
    this.config = {
      ...config,
      graphSeed: copyBytes(config.graphSeed),
      layerLengths: [...config.layerLengths],
    };
    this.tenant = session.tenant;
    this.roundId = session.roundId;
    this.bucket = session.bucket ?? 0;
    this.clients = [...clients].sort();
    this.graph = secAggGraph(this.clients, config.neighbours, config.graphSeed);
    this.coordinates = config.layerLengths.reduce((a, b) => a + b, 0);
    this.lanes = lanesPerCoordinate(config.modulusBits);
    this.context = frame(PROTOCOL, this.tenant, this.roundId, String(this.bucket));
    this.salt = sha256(this.context);
  }

  neighbours(id: string): readonly string[] {
    return this.graph.get(id) ?? [];
  }

  isNeighbour(a: string, b: string): boolean {
    return this.neighbours(a).includes(b);
  }

  /** Bytes of a masked input on the wire. */
  get maskedInputBytes(): number {
    return this.coordinates * this.lanes * 4;
  }

  advertiseBytes(deviceId: string, cipherPublicKey: Uint8Array, maskPublicKey: Uint8Array): Uint8Array {
    return frame(this.context, 'advertise-keys', deviceId, cipherPublicKey, maskPublicKey);
  }

  consistencyBytes(survivors: readonly string[]): Uint8Array {
    return frame(this.context, 'consistency-check', ...survivors);
  }

  shareAad(sender: string, recipient: string): Uint8Array {
    return frame(this.context, 'share', sender, recipient);
  }

  /** The AES-256-GCM key of the shares `sender` deals to `recipient` (one key per direction). */
  shareKey(
    myCipherPrivate: Uint8Array,
    peerCipherPublic: Uint8Array,
    sender: string,
    recipient: string,
  ): Uint8Array | null {
    return agreeKey(myCipherPrivate, peerCipherPublic, this.salt, frame('share-key', sender, recipient));
  }

  commitment(owner: string, selfMaskSeed: Uint8Array): Uint8Array {
    return sha256(frame(this.context, 'self-mask-commitment', owner, selfMaskSeed));
  }

  /** PRG(b_u): the self mask. */
  selfMask(owner: string, selfMaskSeed: Uint8Array): Uint32Array {
    return this.stream(hkdf(selfMaskSeed, this.salt, frame('self-mask', owner)));
  }

  /** PRG(s_{u,v}) for the pair {a, b}, from a's mask private key and b's mask public key (null: invalid key). */
  pairwiseMask(
    myMaskPrivate: Uint8Array,
    peerMaskPublic: Uint8Array,
    a: string,
    b: string,
  ): Uint32Array | null {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    const key = agreeKey(myMaskPrivate, peerMaskPublic, this.salt, frame('pairwise-mask', lo, hi));
    return key && this.stream(key);
  }

  /**
   * Uniform lanes (mod 2^32 or 2^64) from AES-256-CTR under `key`. Sums are reduced to Z_2^k once, at the end:
   * 2^k divides 2^32 (2^64), so reducing last gives the same residue, and a uniform lane stays uniform mod 2^k.
   */
  private stream(key: Uint8Array): Uint32Array {
    const bytes = aesCtrStream(key, this.maskedInputBytes);
    return bytes.byteOffset % 4 === 0
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
      : new Uint32Array(Uint8Array.from(bytes).buffer);
  }
}

/** Whether `b`'s pairwise mask enters `a`'s input with a plus sign (the smaller id adds, the larger subtracts). */
export function addsMask(a: string, b: string): boolean {
  return a < b;
}

if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) {
  // masked inputs are little-endian lanes; every platform Node 24 ships for is little-endian
  throw new Error('@edgefl/fl secure aggregation needs a little-endian platform');
}
