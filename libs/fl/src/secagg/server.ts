/**
 * The server side of secure aggregation (Bonawitz et al. 2017, Fig. 4; SecAgg+ graph of Bell et al. 2020): a state
 * machine with no transport, no timers and no I/O. The caller delivers device messages (`receive`), decides when a
 * phase is over (its deadline, or `pending()` is empty) and calls `endPhase()`, which computes the dropouts and
 * returns the requests of the next phase. Masked inputs are summed as they arrive (O(d) memory); after the
 * unmasking phase `result()` holds the sum of the survivors' updates, exact in Z_2^k.
 */
import { combine } from 'shamir-secret-sharing';
import { decodeFixedPoint, reduceModulus, ringAdd, ringSub } from './fixed-point.js';
import {
  emptyMessage,
  messageDigest,
  SecAggAbortError,
  SECAGG_PHASES,
  type Outbound,
  type SecAggAdvertisedKeys,
  type SecAggMessage,
  type SecAggPhase,
  type SecAggRefusalReason,
  type SecAggRoundConfig,
  type SecAggSession,
  type Verdict,
} from './messages.js';
import { copyBytes, equalBytes, x25519PublicOf, type SignatureVerifier } from './primitives.js';
import { addsMask, Instance, SEALED_SHARES_BYTES, SHARE_BYTES } from './protocol.js';

export interface SecAggServerOptions extends SecAggSession {
  /** The selected clients U0 (device ids). */
  clients: readonly string[];
  /** From `planSecAgg`. */
  config: SecAggRoundConfig;
  /** Verifies devices' signatures with their registered keys. */
  verify: SignatureVerifier;
}

export interface SecAggResult {
  /** U3, sorted: the clients whose input is in the sum. */
  survivors: string[];
  /** Σ of the survivors' fixed-point updates, decoded (per layer). */
  sum: Float64Array[];
  /** sum / |survivors|. */
  mean: Float64Array[];
  /** The same sum in Z_2^k lanes (reduced): what the protocol computed exactly. */
  ringSum: Uint32Array;
  precisionBits: number;
  modulusBits: number;
  /** Who dropped out (sent nothing, or was excluded) in each phase. */
  dropouts: Record<SecAggPhase, string[]>;
  /** Clients that sent conflicting messages in one phase, or shares that do not reconstruct their commitment. */
  equivocators: string[];
  /** PRG streams the server expanded to unmask: one per survivor, one per (dropped, surviving neighbour) pair. */
  maskStreams: number;
}

export type SecAggServerState = SecAggPhase | 'DONE' | 'ABORTED';

interface Advertised extends SecAggAdvertisedKeys {
  readonly id: string;
}

const copyMap = (m: Record<string, Uint8Array>): Record<string, Uint8Array> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, copyBytes(v)]));

/** At most this many t-subsets are tried when a client's shares do not reconstruct its committed secret. */
const MAX_RECONSTRUCTION_TRIES = 32;

const refuse = (reason: SecAggRefusalReason, message: string): Verdict => ({
  accepted: false,
  reason,
  message,
});

function* subsets(n: number, t: number): Generator<number[]> {
  const idx = Array.from({ length: t }, (_, i) => i);
  while (true) {
    yield [...idx];
    let i = t - 1;
    while (i >= 0 && idx[i] === n - t + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < t; j++) idx[j] = idx[j - 1]! + 1;
  }
}

export class SecAggServer {
  private readonly inst: Instance;
  private readonly verify: SignatureVerifier;
  private stage = -1; // index into SECAGG_PHASES; -1 before start
  private terminal: 'DONE' | 'ABORTED' | null = null;
  private expected = new Set<string>();
  private answered = new Map<string, string>(); // sender → digest, this phase
  private excluded = new Set<string>(); // equivocated in this phase
  private readonly history = new Map<string, string>(); // `${phase}|${sender}` → digest of accepted messages
  private readonly equivocators = new Set<string>();
  private readonly dropouts = Object.fromEntries(SECAGG_PHASES.map((p) => [p, [] as string[]])) as Record<
    SecAggPhase,
    string[]
  >;
  private readonly keys = new Map<string, Advertised>();
  private readonly commitments = new Map<string, Uint8Array>();
  private readonly sealedShares = new Map<string, Record<string, Uint8Array>>(); // dealer → recipient → ct
  private readonly forwarded = new Map<string, string[]>(); // client → dealers whose shares it got (its masks)
  private readonly signatures = new Map<string, Uint8Array>();
  private readonly droppedAsked = new Map<string, string[]>();
  private readonly unmaskShares = new Map<string, Pick<SecAggMessage, 'selfMaskShares' | 'maskKeyShares'>>();
  private u2: string[] = [];
  private u3: string[] = [];
  private u3Set = new Set<string>();
  private u3Bytes: Uint8Array = new Uint8Array(0);
  private readonly clientSet: ReadonlySet<string>;
  private readonly keyOwners = new Map<string, string>(); // hex of every advertised key → its client
  private sum: Uint32Array | null = null;
  private outcome: SecAggResult | null = null;

  constructor(options: SecAggServerOptions) {
    this.inst = new Instance(options, options.clients, options.config);
    this.clientSet = new Set(this.inst.clients);
    this.verify = options.verify;
  }

  get state(): SecAggServerState {
    return this.terminal ?? SECAGG_PHASES[Math.max(0, this.stage)]!;
  }

  get config(): SecAggRoundConfig {
    return this.inst.config;
  }

  /** Clients asked in the current phase that have not answered yet (the caller may end the phase early when empty). */
  pending(): string[] {
    return [...this.expected].filter((id) => !this.answered.has(id) && !this.excluded.has(id)).sort();
  }

  /** The ADVERTISE_KEYS requests to every selected client: the config and the client list. */
  start(): Outbound[] {
    if (this.stage !== -1) throw new Error('the protocol has already started');
    this.stage = 0;
    this.expected = new Set(this.inst.clients);
    return this.inst.clients.map((to) => {
      const message = this.request('ADVERTISE_KEYS');
      message.participants = [...this.inst.clients];
      message.config = this.inst.config;
      return { to, message };
    });
  }

  /** Takes one device message. Refused messages change nothing (the verdict says why). */
  async receive(m: SecAggMessage): Promise<Verdict> {
    const inst = this.inst;
    if (m.tenant !== inst.tenant || m.roundId !== inst.roundId || m.bucket !== inst.bucket)
      return refuse('wrong-round', 'the message belongs to another round or bucket');
    const sender = m.senderDeviceId;
    if (sender === null || !this.clientSet.has(sender))
      return refuse(
        'unknown-sender',
        `${sender ?? 'a message without sender'} is not a client of this round`,
      );
    const digest = messageDigest(m);
    const phase = this.terminal ? null : SECAGG_PHASES[this.stage];
    if (m.phase !== phase) {
      if (this.history.get(`${m.phase}|${sender}`) === digest)
        return refuse('replay', `${m.phase} message of ${sender} already accepted`);
      return refuse('out-of-phase', `${m.phase} message while ${phase ?? this.state}`);
    }
    if (!this.expected.has(sender))
      return refuse('not-participant', `${sender} left the round before ${phase}`);
    if (this.excluded.has(sender)) return refuse('equivocation', `${sender} already equivocated in ${phase}`);
    const prior = this.answered.get(sender);
    if (prior === digest) return refuse('replay', `${phase} message of ${sender} already accepted`);
    if (prior !== undefined) {
      this.equivocators.add(sender);
      // masked inputs are summed on arrival: the first one stands, the conflicting one is refused
      if (phase !== 'MASKED_INPUT') this.excluded.add(sender);
      return refuse('equivocation', `${sender} sent two different ${phase} messages`);
    }
    const stage = this.stage;
    const verdict = await this.accept(phase, sender, m);
    // signature checks may be asynchronous: the phase may have ended, or another message of the sender come in
    if (this.stage !== stage || this.terminal) return refuse('out-of-phase', `${phase} ended meanwhile`);
    if (verdict.accepted && (this.answered.has(sender) || this.excluded.has(sender))) {
      this.equivocators.add(sender);
      this.excluded.add(sender);
      return refuse('equivocation', `${sender} sent two different ${phase} messages`);
    }
    if (verdict.accepted) {
      this.answered.set(sender, digest);
      this.history.set(`${phase}|${sender}`, digest);
    }
    return verdict;
  }

  private accept(phase: SecAggPhase, sender: string, m: SecAggMessage): Promise<Verdict> | Verdict {
    switch (phase) {
      case 'ADVERTISE_KEYS':
        return this.acceptKeys(sender, m);
      case 'SHARE_KEYS':
        return this.acceptShares(sender, m);
      case 'MASKED_INPUT':
        return this.acceptMaskedInput(sender, m);
      case 'CONSISTENCY_CHECK':
        return this.acceptSignature(sender, m);
      case 'UNMASKING':
        return this.acceptUnmask(sender, m);
    }
  }

  private async acceptKeys(sender: string, m: SecAggMessage): Promise<Verdict> {
    const c = m.cipherPublicKey;
    const s = m.maskPublicKey;
    const sig = m.keySignature;
    if (!c || !s || !sig || c.length !== 32 || s.length !== 32)
      return refuse('malformed', `${sender}: ADVERTISE_KEYS needs two 32-byte X25519 keys and a signature`);
    if (equalBytes(c, s)) return refuse('malformed', `${sender}: the two keys are equal`);
    const hexes = [Buffer.from(c).toString('hex'), Buffer.from(s).toString('hex')];
    const owner = hexes.map((h) => this.keyOwners.get(h)).find((o) => o !== undefined && o !== sender);
    if (owner !== undefined) return refuse('malformed', `${sender}: a key already advertised by ${owner}`);
    if (!(await this.verify(sender, this.inst.advertiseBytes(sender, c, s), sig)))
      return refuse('bad-signature', `${sender}: the key signature does not verify`);
    for (const h of hexes) this.keyOwners.set(h, sender);
    // kept bytes are copied: a transport may hand over views of buffers it reuses
    this.keys.set(sender, {
      id: sender,
      cipherPublicKey: copyBytes(c),
      maskPublicKey: copyBytes(s),
      keySignature: copyBytes(sig),
    });
    return { accepted: true };
  }

  private acceptShares(sender: string, m: SecAggMessage): Verdict {
    const want = this.inst.neighbours(sender).filter((v) => this.keys.has(v));
    const got = Object.keys(m.encryptedShares);
    if (got.length !== want.length || got.some((v) => !want.includes(v)))
      return refuse('malformed', `${sender}: shares must go to exactly its neighbours with keys`);
    if (got.some((v) => m.encryptedShares[v]!.length !== SEALED_SHARES_BYTES))
      return refuse('malformed', `${sender}: a share ciphertext is not ${SEALED_SHARES_BYTES} bytes`);
    if (!m.selfMaskCommitment || m.selfMaskCommitment.length !== 32)
      return refuse('malformed', `${sender}: no 32-byte self-mask commitment`);
    this.sealedShares.set(sender, copyMap(m.encryptedShares));
    this.commitments.set(sender, copyBytes(m.selfMaskCommitment));
    return { accepted: true };
  }

  private acceptMaskedInput(sender: string, m: SecAggMessage): Verdict {
    const bytes = m.maskedInput;
    if (!bytes || bytes.length !== this.inst.maskedInputBytes)
      return refuse('malformed', `${sender}: a masked input has ${this.inst.maskedInputBytes} bytes`);
    const y =
      bytes.byteOffset % 4 === 0
        ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
        : new Uint32Array(Uint8Array.from(bytes).buffer);
    this.sum ??= new Uint32Array(this.inst.coordinates * this.inst.lanes);
    ringAdd(this.sum, y, this.inst.lanes);
    return { accepted: true };
  }

  private async acceptSignature(sender: string, m: SecAggMessage): Promise<Verdict> {
    const sig = m.consistencySignature;
    if (!sig) return refuse('malformed', `${sender}: no consistency signature`);
    if (!(await this.verify(sender, this.u3Bytes, sig)))
      return refuse('bad-signature', `${sender}: the consistency signature does not verify`);
    this.signatures.set(sender, copyBytes(sig));
    return { accepted: true };
  }

  private acceptUnmask(sender: string, m: SecAggMessage): Verdict {
    const mayB = new Set([sender, ...(this.forwarded.get(sender) ?? [])].filter((v) => this.u3Set.has(v)));
    const mayS = new Set(this.droppedAsked.get(sender) ?? []);
    for (const v of Object.keys(m.selfMaskShares))
      if (!mayB.has(v))
        return refuse('malformed', `${sender}: a self-mask share of ${v}, which it does not hold`);
    for (const v of Object.keys(m.maskKeyShares))
      if (!mayS.has(v)) return refuse('malformed', `${sender}: a key share of ${v}, which was not asked for`);
    const all = [...Object.values(m.selfMaskShares), ...Object.values(m.maskKeyShares)];
    if (all.some((s) => s.length !== SHARE_BYTES))
      return refuse('malformed', `${sender}: a share is not ${SHARE_BYTES} bytes`);
    this.unmaskShares.set(sender, {
      selfMaskShares: copyMap(m.selfMaskShares),
      maskKeyShares: copyMap(m.maskKeyShares),
    });
    return { accepted: true };
  }

  private request(phase: SecAggPhase): SecAggMessage {
    return emptyMessage(this.inst, phase, null);
  }

  private abort(phase: SecAggPhase, reason: 'below-threshold' | 'equivocation', message: string): never {
    this.terminal = 'ABORTED';
    this.sum = null;
    throw new SecAggAbortError(reason, phase, message);
  }

  /**
   * Ends the current phase (the caller's deadline): who answered goes on, the rest dropped out. Returns the
   * requests of the next phase ([] after UNMASKING, when `result()` is ready). Throws `SecAggAbortError` when fewer
   * than t clients remain, or shares are missing or do not reconstruct; the server then learns nothing.
   */
  async endPhase(): Promise<Outbound[]> {
    if (this.stage < 0 || this.terminal) throw new Error(`no phase to end (${this.state})`);
    const phase = SECAGG_PHASES[this.stage]!;
    const went = [...this.expected].filter((id) => this.answered.has(id) && !this.excluded.has(id)).sort();
    const wentSet = new Set(went);
    this.dropouts[phase] = [...this.expected].filter((id) => !wentSet.has(id)).sort();
    const t = this.inst.config.threshold;
    if (phase !== 'UNMASKING' && went.length < t)
      this.abort(phase, 'below-threshold', `${went.length} clients completed ${phase}, threshold ${t}`);
    let out: Outbound[];
    switch (phase) {
      case 'ADVERTISE_KEYS':
        for (const id of this.keys.keys()) if (!wentSet.has(id)) this.keys.delete(id);
        out = went.map((to) => {
          const message = this.request('SHARE_KEYS');
          message.participants = this.inst.neighbours(to).filter((v) => this.keys.has(v));
          for (const v of message.participants) {
            const k = this.keys.get(v)!;
            message.advertisedKeys[v] = {
              cipherPublicKey: k.cipherPublicKey,
              maskPublicKey: k.maskPublicKey,
              keySignature: k.keySignature,
            };
          }
          return { to, message };
        });
        break;
      case 'SHARE_KEYS':
        this.u2 = went;
        out = went.map((to) => {
          const message = this.request('MASKED_INPUT');
          message.participants = this.inst.neighbours(to).filter((v) => wentSet.has(v));
          for (const v of message.participants) message.encryptedShares[v] = this.sealedShares.get(v)![to]!;
          this.forwarded.set(to, message.participants);
          return { to, message };
        });
        this.sealedShares.clear();
        break;
      case 'MASKED_INPUT':
        this.u3 = went;
        this.u3Set = wentSet;
        this.u3Bytes = this.inst.consistencyBytes(went);
        out = went.map((to) => {
          const message = this.request('CONSISTENCY_CHECK');
          message.participants = [...went];
          return { to, message };
        });
        break;
      case 'CONSISTENCY_CHECK':
        out = went.map((to) => {
          const message = this.request('UNMASKING');
          message.participants = [...this.u3];
          message.dropped = (this.forwarded.get(to) ?? []).filter((v) => !this.u3Set.has(v));
          this.droppedAsked.set(to, message.dropped);
          for (const w of [to, ...this.inst.neighbours(to)]) {
            const sig = this.signatures.get(w);
            if (sig && wentSet.has(w)) message.survivorSignatures[w] = sig;
          }
          return { to, message };
        });
        break;
      case 'UNMASKING':
        await this.unmask();
        this.terminal = 'DONE';
        return [];
    }
    this.stage++;
    this.expected = new Set(went);
    this.answered = new Map();
    this.excluded = new Set();
    return out;
  }

  /** The result of a completed round. */
  result(): SecAggResult {
    if (!this.outcome) throw new Error(`no result: the protocol is ${this.state}`);
    return this.outcome;
  }

  private sharesOf(
    dealer: string,
    kind: 'selfMaskShares' | 'maskKeyShares',
    responders: ReadonlySet<string>,
  ): Uint8Array[] {
    // only the dealer's neighbourhood holds its shares (sorted, so the subsets tried are the same every run)
    const shares: Uint8Array[] = [];
    for (const holder of [dealer, ...this.inst.neighbours(dealer)].sort()) {
      const share = responders.has(holder) ? this.unmaskShares.get(holder)?.[kind][dealer] : undefined;
      if (share) shares.push(share);
    }
    return shares;
  }

  /** Reconstructs a dealer's secret from t of its shares and checks it against what the dealer committed to. */
  private async reconstruct(
    dealer: string,
    kind: 'selfMaskShares' | 'maskKeyShares',
    responders: ReadonlySet<string>,
    check: (secret: Uint8Array) => boolean,
  ): Promise<Uint8Array> {
    const shares = this.sharesOf(dealer, kind, responders);
    const t = this.inst.config.threshold;
    const what = kind === 'selfMaskShares' ? 'self-mask' : 'mask-key';
    if (shares.length < t)
      this.abort(
        'UNMASKING',
        'below-threshold',
        `${shares.length} ${what} shares of ${dealer}, threshold ${t}`,
      );
    let tries = 0;
    for (const subset of subsets(shares.length, t)) {
      if (tries++ >= MAX_RECONSTRUCTION_TRIES) break;
      let secret: Uint8Array;
      try {
        secret = await combine(subset.map((i) => shares[i]!));
      } catch {
        continue; // e.g. two shares with one x-coordinate: not a valid subset
      }
      if (check(secret)) return secret;
    }
    this.equivocators.add(dealer);
    return this.abort(
      'UNMASKING',
      'equivocation',
      `the ${what} shares of ${dealer} do not reconstruct its commitment`,
    );
  }

  private async unmask(): Promise<void> {
    const inst = this.inst;
    const sum = this.sum!;
    let streams = 0;
    const responders = new Set(
      [...this.expected].filter((id) => this.answered.has(id) && !this.excluded.has(id)),
    );
    for (const u of this.u3) {
      const commitment = this.commitments.get(u)!;
      const b = await this.reconstruct(u, 'selfMaskShares', responders, (secret) =>
        equalBytes(inst.commitment(u, secret), commitment),
      );
      ringSub(sum, inst.selfMask(u, b), inst.lanes);
      streams++;
    }
    const dropped = this.u2.filter((v) => !this.u3Set.has(v));
    for (const v of dropped) {
      const maskedWith = this.inst
        .neighbours(v)
        .filter((u) => this.u3Set.has(u) && this.forwarded.get(u)?.includes(v));
      if (maskedWith.length === 0) continue;
      const publicKey = this.keys.get(v)!.maskPublicKey;
      const secret = await this.reconstruct(v, 'maskKeyShares', responders, (sk) =>
        equalBytes(x25519PublicOf(sk), publicKey),
      );
      for (const u of maskedWith) {
        const mask = inst.pairwiseMask(secret, this.keys.get(u)!.maskPublicKey, v, u)!;
        // u added +mask when u < v, −mask otherwise: undo it
        if (addsMask(u, v)) ringSub(sum, mask, inst.lanes);
        else ringAdd(sum, mask, inst.lanes);
        streams++;
      }
    }
    reduceModulus(sum, inst.config.modulusBits);
    const { precisionBits, modulusBits, layerLengths } = inst.config;
    const decoded = decodeFixedPoint(sum, { precisionBits, modulusBits }, layerLengths);
    const n = this.u3.length;
    this.outcome = {
      survivors: [...this.u3],
      sum: decoded,
      mean: decoded.map((layer) => layer.map((v) => v / n)),
      ringSum: sum,
      precisionBits,
      modulusBits,
      dropouts: this.dropouts,
      equivocators: [...this.equivocators].sort(),
      maskStreams: streams,
    };
    this.unmaskShares.clear();
  }
}
