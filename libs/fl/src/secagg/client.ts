/**
 * The client side of secure aggregation (Bonawitz et al. 2017, Fig. 4, with the SecAgg+ graph of Bell et al.
 * 2020): a state machine with no transport, no timers and no I/O. Each `receive` takes one aggregator request and
 * returns the reply to send, or a refusal. A client never answers a request twice, never reveals a share before
 * the survivor list is confirmed by t signatures, and never reveals both shares of one client.
 */
import { split } from 'shamir-secret-sharing';
import { InvalidUpdateError } from '../errors.js';
import { encodeFixedPoint, reduceModulus, ringAdd, ringSub } from './fixed-point.js';
import {
  emptyMessage,
  messageDigest,
  SECAGG_PHASES,
  type SecAggMessage,
  type SecAggRefusalReason,
  type SecAggSession,
} from './messages.js';
import {
  copyBytes,
  defaultRandomBytes,
  equalBytes,
  open,
  seal,
  x25519KeyPair,
  type RandomBytes,
  type SignatureVerifier,
  type Signer,
  type X25519KeyPair,
} from './primitives.js';
import { addsMask, configProblem, Instance, SECRET_BYTES, SHARE_BYTES } from './protocol.js';

export interface SecAggClientOptions extends SecAggSession {
  deviceId: string;
  /** Signs with the device's Ed25519 identity key. */
  sign: Signer;
  /** Verifies other devices' signatures with their registered keys. */
  verify: SignatureVerifier;
  /** The clipped update (layers); called once, when the aggregator asks for the masked input. */
  input: () => readonly Float32Array[] | Promise<readonly Float32Array[]>;
  /** Secret randomness (default node:crypto); a seeded DRBG only for tests and oracles. */
  random?: RandomBytes;
}

/** What one `receive` produced: the messages to send to the aggregator, or why the request was refused. */
export type ClientStep =
  { ok: true; send: SecAggMessage[] } | { ok: false; reason: SecAggRefusalReason; message: string };

export type SecAggClientState = 'waiting' | 'done' | 'aborted';

interface Peer {
  cipherPublicKey: Uint8Array;
  maskPublicKey: Uint8Array;
}

interface Held {
  selfMask: Uint8Array;
  maskKey: Uint8Array;
}

class Refusal extends Error {
  constructor(
    readonly reason: SecAggRefusalReason,
    message: string,
    /** Whether the client leaves the round (the aggregator misbehaved or the round cannot go on safely). */
    readonly abort: boolean,
  ) {
    super(message);
  }
}

const fail = (reason: SecAggRefusalReason, message: string): never => {
  throw new Refusal(reason, message, true);
};

function sortedUnique(ids: readonly string[], what: string): string[] {
  const sorted = [...ids].sort();
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i] === sorted[i - 1]) fail('malformed', `${what} lists ${sorted[i]} twice`);
  return sorted;
}

/** The sorted list, checked to name exactly the entries of `record`. */
function listedExactly(ids: readonly string[], record: object, entries: string, list: string): string[] {
  const sorted = sortedUnique(ids, `the ${list}`);
  const keys = Object.keys(record);
  if (keys.length !== sorted.length || keys.some((k) => !sorted.includes(k)))
    fail('malformed', `the ${entries} do not match the ${list}`);
  return sorted;
}

export class SecAggClient {
  private readonly session: Required<SecAggSession>;
  private readonly random: RandomBytes;
  private next = 0; // index into SECAGG_PHASES of the request expected next
  private readonly seen = new Map<number, string>(); // digests of the requests answered, by phase
  private stateValue: SecAggClientState = 'waiting';
  private instance: Instance | null = null;
  private cipherKeys: X25519KeyPair | null = null;
  private maskKeys: X25519KeyPair | null = null;
  private peers = new Map<string, Peer>(); // neighbours with verified keys (U1 ∩ N(u))
  private held = new Map<string, Held>(); // shares held, by dealer (this client included)
  private dealers: string[] = []; // neighbours whose shares arrived (U2 ∩ N(u)): the pairwise masks applied
  private selfMaskSeed: Uint8Array | null = null;
  private survivors: string[] | null = null;
  private survivorSet: ReadonlySet<string> = new Set();

  constructor(private readonly options: SecAggClientOptions) {
    this.session = { tenant: options.tenant, roundId: options.roundId, bucket: options.bucket ?? 0 };
    this.random = options.random ?? defaultRandomBytes;
  }

  get deviceId(): string {
    return this.options.deviceId;
  }

  get state(): SecAggClientState {
    return this.stateValue;
  }

  /** Handles one aggregator request. */
  async receive(message: SecAggMessage): Promise<ClientStep> {
    if (
      message.tenant !== this.session.tenant ||
      message.roundId !== this.session.roundId ||
      message.bucket !== this.session.bucket
    ) {
      return { ok: false, reason: 'wrong-round', message: 'the message belongs to another round or bucket' };
    }
    if (message.senderDeviceId !== null)
      return { ok: false, reason: 'unknown-sender', message: 'requests come from the aggregator only' };
    if (this.stateValue === 'aborted')
      return { ok: false, reason: 'aborted', message: 'this client left the round' };
    const index = SECAGG_PHASES.indexOf(message.phase);
    const digest = messageDigest(message);
    if (this.seen.get(index) === digest)
      return { ok: false, reason: 'replay', message: `${message.phase} request already answered` };
    if (index !== this.next || this.stateValue === 'done') {
      return {
        ok: false,
        reason: 'out-of-phase',
        message: `${message.phase} request while ${this.stateValue === 'done' ? 'done' : `expecting ${SECAGG_PHASES[this.next]}`}`,
      };
    }
    try {
      const reply = await this.handle(message);
      this.seen.set(index, digest);
      this.next++;
      if (this.next === SECAGG_PHASES.length) this.stateValue = 'done';
      return { ok: true, send: [reply] };
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      if (error.abort) this.stateValue = 'aborted';
      return { ok: false, reason: error.reason, message: error.message };
    }
  }

  private reply(phase: SecAggMessage['phase']): SecAggMessage {
    return emptyMessage(this.session, phase, this.options.deviceId);
  }

  private handle(m: SecAggMessage): Promise<SecAggMessage> {
    switch (m.phase) {
      case 'ADVERTISE_KEYS':
        return this.advertise(m);
      case 'SHARE_KEYS':
        return this.shareKeys(m);
      case 'MASKED_INPUT':
        return this.maskedInput(m);
      case 'CONSISTENCY_CHECK':
        return this.consistency(m);
      case 'UNMASKING':
        return this.unmask(m);
    }
  }

  private get me(): string {
    return this.options.deviceId;
  }

  private get inst(): Instance {
    return this.instance!;
  }

  // Round 0: two fresh X25519 key pairs, signed with the device key.
  private async advertise(m: SecAggMessage): Promise<SecAggMessage> {
    if (!m.config) return fail('bad-config', 'the ADVERTISE_KEYS request carries no config');
    const clients = sortedUnique(m.participants, 'the client list');
    if (!clients.includes(this.me)) return fail('not-participant', `${this.me} is not among the clients`);
    const problem = configProblem(clients, m.config);
    if (problem) return fail('bad-config', problem);
    this.instance = new Instance(this.session, clients, m.config);
    this.cipherKeys = x25519KeyPair(this.random);
    this.maskKeys = x25519KeyPair(this.random);
    const out = this.reply('ADVERTISE_KEYS');
    out.cipherPublicKey = this.cipherKeys.publicKey;
    out.maskPublicKey = this.maskKeys.publicKey;
    out.keySignature = await this.options.sign(
      this.inst.advertiseBytes(this.me, this.cipherKeys.publicKey, this.maskKeys.publicKey),
    );
    return out;
  }

  // Round 1: t-of-m Shamir shares of b_u and s_sk for the neighbourhood, each sealed to its holder.
  private async shareKeys(m: SecAggMessage): Promise<SecAggMessage> {
    const inst = this.inst;
    const neighbours = listedExactly(m.participants, m.advertisedKeys, 'advertised keys', 'neighbour list');
    const seen: Uint8Array[] = [this.cipherKeys!.publicKey, this.maskKeys!.publicKey];
    for (const v of neighbours) {
      if (v === this.me || !inst.isNeighbour(this.me, v))
        fail('inconsistent', `${v} is not a neighbour of ${this.me}`);
      const k = m.advertisedKeys[v]!;
      if (k.cipherPublicKey.length !== 32 || k.maskPublicKey.length !== 32)
        fail('malformed', `the keys of ${v} are not X25519 public keys`);
      const ok = await this.options.verify(
        v,
        inst.advertiseBytes(v, k.cipherPublicKey, k.maskPublicKey),
        k.keySignature,
      );
      if (!ok) fail('bad-signature', `the key signature of ${v} does not verify`);
      for (const pk of [k.cipherPublicKey, k.maskPublicKey])
        if (seen.some((s) => equalBytes(s, pk)))
          fail('equivocation', `the keys of ${v} repeat another client's`);
      seen.push(k.cipherPublicKey, k.maskPublicKey);
      // copies: a transport may hand over views of buffers it reuses
      this.peers.set(v, {
        cipherPublicKey: copyBytes(k.cipherPublicKey),
        maskPublicKey: copyBytes(k.maskPublicKey),
      });
    }
    const t = inst.config.threshold;
    if (neighbours.length + 1 < t)
      fail('below-threshold', `${neighbours.length + 1} clients in the neighbourhood, threshold ${t}`);
    const holders = [this.me, ...neighbours].sort();
    this.selfMaskSeed = Uint8Array.from(this.random(SECRET_BYTES));
    const [bShares, sShares] = await Promise.all([
      split(this.selfMaskSeed, holders.length, t),
      split(this.maskKeys!.privateKey, holders.length, t),
    ]);
    const out = this.reply('SHARE_KEYS');
    holders.forEach((h, i) => {
      if (h === this.me) {
        this.held.set(h, { selfMask: bShares[i]!, maskKey: sShares[i]! });
        return;
      }
      const key = inst.shareKey(this.cipherKeys!.privateKey, this.peers.get(h)!.cipherPublicKey, this.me, h);
      if (!key) fail('malformed', `the cipher key of ${h} is invalid`);
      const plain = new Uint8Array(2 * SHARE_BYTES);
      plain.set(bShares[i]!, 0);
      plain.set(sShares[i]!, SHARE_BYTES);
      out.encryptedShares[h] = seal(key!, plain, inst.shareAad(this.me, h), this.random);
    });
    out.selfMaskCommitment = inst.commitment(this.me, this.selfMaskSeed);
    return out;
  }

  // Round 2: y_u = x_u + PRG(b_u) + Σ ±PRG(s_{u,v}) over the neighbours whose shares arrived, in Z_2^k.
  private async maskedInput(m: SecAggMessage): Promise<SecAggMessage> {
    const inst = this.inst;
    const dealers = listedExactly(m.participants, m.encryptedShares, 'forwarded shares', 'dealer list');
    for (const v of dealers) {
      const peer = this.peers.get(v);
      if (!peer) fail('inconsistent', `shares from ${v}, which did not advertise keys to ${this.me}`);
      const key = inst.shareKey(this.cipherKeys!.privateKey, peer!.cipherPublicKey, v, this.me);
      const plain = key && open(key, m.encryptedShares[v]!, inst.shareAad(v, this.me));
      if (!plain || plain.length !== 2 * SHARE_BYTES) fail('bad-share', `the shares of ${v} do not decrypt`);
      this.held.set(v, { selfMask: plain!.slice(0, SHARE_BYTES), maskKey: plain!.slice(SHARE_BYTES) });
    }
    const t = inst.config.threshold;
    if (dealers.length + 1 < t) fail('below-threshold', `${dealers.length + 1} dealers, threshold ${t}`);
    this.dealers = dealers;
    let layers: readonly Float32Array[];
    try {
      layers = await this.options.input();
    } catch (error) {
      return fail('bad-input', `the update could not be read: ${(error as Error).message}`);
    }
    const lengths = inst.config.layerLengths;
    if (layers.length !== lengths.length || layers.some((l, i) => l.length !== lengths[i]))
      fail('bad-input', `the update's layers are not ${lengths.join(', ')} long`);
    let y: Uint32Array;
    try {
      y = encodeFixedPoint(layers, inst.config);
    } catch (error) {
      if (error instanceof InvalidUpdateError) return fail('bad-input', error.message);
      throw error;
    }
    ringAdd(y, inst.selfMask(this.me, this.selfMaskSeed!), inst.lanes);
    for (const v of dealers) {
      const mask = inst.pairwiseMask(this.maskKeys!.privateKey, this.peers.get(v)!.maskPublicKey, this.me, v);
      if (!mask) fail('malformed', `the mask key of ${v} is invalid`);
      if (addsMask(this.me, v)) ringAdd(y, mask!, inst.lanes);
      else ringSub(y, mask!, inst.lanes);
    }
    reduceModulus(y, inst.config.modulusBits);
    const out = this.reply('MASKED_INPUT');
    out.maskedInput = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
    return out;
  }

  // Round 3: sign the survivor list U3 (the consistency check that stops a server from telling clients apart).
  private async consistency(m: SecAggMessage): Promise<SecAggMessage> {
    const survivors = sortedUnique(m.participants, 'the survivor list');
    const survivorSet = new Set(survivors);
    if (!survivorSet.has(this.me)) fail('inconsistent', `${this.me} is not among the survivors`);
    for (const v of this.inst.neighbours(this.me))
      if (survivorSet.has(v) && !this.dealers.includes(v))
        fail('inconsistent', `survivor ${v} never dealt shares to ${this.me}`);
    const t = this.inst.config.threshold;
    if (survivors.length < t) fail('below-threshold', `${survivors.length} survivors, threshold ${t}`);
    this.survivors = survivors;
    this.survivorSet = survivorSet;
    const out = this.reply('CONSISTENCY_CHECK');
    out.consistencySignature = await this.options.sign(this.inst.consistencyBytes(survivors));
    return out;
  }

  // Round 4: after t valid signatures over the same U3, b-shares of survivors and s-shares of the dropped.
  private async unmask(m: SecAggMessage): Promise<SecAggMessage> {
    const inst = this.inst;
    const survivors = this.survivors!;
    const claimed = [...m.participants].sort();
    if (claimed.length !== survivors.length || claimed.some((v, i) => v !== survivors[i]))
      fail('inconsistent', 'the survivor list differs from the one this client signed');
    const dropped = sortedUnique(m.dropped, 'the dropped list');
    for (const v of dropped) {
      if (this.survivorSet.has(v))
        fail('both-kinds', `${v} is a survivor: its self-mask share is out, so its key share never is`);
      if (!this.dealers.includes(v)) fail('inconsistent', `${this.me} holds no share of ${v}`);
    }
    const bytes = inst.consistencyBytes(survivors);
    let valid = 0;
    for (const [w, signature] of Object.entries(m.survivorSignatures)) {
      if (!this.survivorSet.has(w) || (w !== this.me && !inst.isNeighbour(this.me, w)))
        fail('malformed', `a consistency signature of ${w}, not a surviving neighbour`);
      if (!(await this.options.verify(w, bytes, signature)))
        fail('bad-signature', `the consistency signature of ${w} does not verify`);
      valid++;
    }
    const t = inst.config.threshold;
    if (valid < t) fail('below-threshold', `${valid} consistency signatures, threshold ${t}`);
    const out = this.reply('UNMASKING');
    for (const [dealer, shares] of this.held)
      if (this.survivorSet.has(dealer)) out.selfMaskShares[dealer] = shares.selfMask;
    for (const v of dropped) out.maskKeyShares[v] = this.held.get(v)!.maskKey;
    // nothing secret is needed any more
    this.selfMaskSeed = null;
    this.held = new Map();
    return out;
  }
}
