import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError, InvalidUpdateError } from '../errors.js';
import { createRule } from '../rules.js';
import { robustOverBuckets, secAggBuckets } from './buckets.js';
import { SecAggClient } from './client.js';
import {
  decodeFixedPoint,
  decodeRingExact,
  encodeFixedPoint,
  planFixedPoint,
  reduceModulus,
  requiredModulusBits,
  ringAdd,
  ringSub,
} from './fixed-point.js';
import { defaultNeighbours, secAggGraph, type NeighbourGraph } from './graph.js';
import { runSecAggInProcess, type InProcessRoundOptions } from './in-process.js';
import { emptyMessage, SECAGG_PHASES, type SecAggMessage, type SecAggPhase } from './messages.js';
import { ed25519Signer, ed25519Verifier, seededRandomBytes, type RandomBytes } from './primitives.js';
import { planSecAgg } from './protocol.js';
import { SecAggServer } from './server.js';

const session = { tenant: 'acme', roundId: 'round-7' };

interface PlainClient {
  id: string;
  weights: Float32Array[];
}

function makeClients(n: number, lengths: number[], seed: string, bound = 1): PlainClient[] {
  const rnd = seededRandomBytes(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: `dev-${String(i).padStart(3, '0')}`,
    weights: lengths.map((len) => {
      const words = new Uint32Array(Uint8Array.from(rnd(4 * len)).buffer);
      return Float32Array.from(words, (w) => ((w / 2 ** 32) * 2 - 1) * bound);
    }),
  }));
}

/** Σ of the fixed-point encodings of `clients`, reduced: what the protocol must compute exactly. */
function plainRingSum(
  clients: readonly PlainClient[],
  plan: { bound: number; precisionBits: number; modulusBits: number },
): Uint32Array {
  const lanes = plan.modulusBits <= 32 ? 1 : 2;
  let acc: Uint32Array | null = null;
  for (const c of clients) {
    const x = encodeFixedPoint(c.weights, plan);
    if (!acc) acc = x;
    else ringAdd(acc, x, lanes);
  }
  reduceModulus(acc!, plan.modulusBits);
  return acc!;
}

const run = (options: Partial<InProcessRoundOptions> & { clients: PlainClient[] }) =>
  runSecAggInProcess({ ...session, threshold: 8, random: seededRandomBytes('round'), ...options });

describe('fixed point in Z_2^k', () => {
  it('chooses k = bitLength(n·⌈B·2^p⌉) + 1 and the largest p ≤ 24 that keeps one 32-bit lane', () => {
    expect(requiredModulusBits(1, 1, 16)).toBe(18); // 2^16 has 17 bits
    expect(requiredModulusBits(1000, 1, 16)).toBe(27); // 1000·2^16 < 2^26
    expect(planFixedPoint({ clients: 1000, bound: 1 })).toEqual({
      clients: 1000,
      bound: 1,
      precisionBits: 21,
      modulusBits: 32,
    });
    expect(planFixedPoint({ clients: 10, bound: 1 }).precisionBits).toBe(24);
    const wide = planFixedPoint({ clients: 1000, bound: 1e6 });
    expect(wide.modulusBits).toBeGreaterThan(32);
    expect(wide.precisionBits).toBe(24);
    expect(() => planFixedPoint({ clients: 10, bound: 1, precisionBits: 12 })).toThrow(InvalidParameterError);
    expect(() => planFixedPoint({ clients: 2 ** 20, bound: 2 ** 28, precisionBits: 24 })).toThrow(/modulus/);
  });

  it('round-trips values within 2^-(p+1) and refuses values outside [-B, B] or non-finite', () => {
    const plan = planFixedPoint({ clients: 4, bound: 2, precisionBits: 16 });
    const v = Float32Array.from([0, 1.5, -2, 2, -0.333333, 1e-7]);
    const back = decodeFixedPoint(encodeFixedPoint([v], plan), plan, [v.length])[0]!;
    for (let i = 0; i < v.length; i++) expect(Math.abs(back[i]! - v[i]!)).toBeLessThanOrEqual(2 ** -17);
    expect(() => encodeFixedPoint([Float32Array.of(2.5)], plan)).toThrow(InvalidUpdateError);
    expect(() => encodeFixedPoint([Float32Array.of(Number.NaN)], plan)).toThrow(/NaN/);
  });

  it('two-lane (64-bit) arithmetic is exact against BigInt, carries and borrows included', () => {
    const k = 45;
    const rnd = seededRandomBytes('lanes');
    const a = new Uint32Array(Uint8Array.from(rnd(8 * 500)).buffer);
    const b = new Uint32Array(Uint8Array.from(rnd(8 * 500)).buffer);
    a[0] = 0xffffffff; // force a carry
    b[0] = 1;
    const mod = 1n << BigInt(k);
    const big = (v: Uint32Array, i: number) => (BigInt(v[2 * i + 1]!) << 32n) | BigInt(v[2 * i]!);
    const sum = a.slice();
    ringAdd(sum, b, 2);
    reduceModulus(sum, k);
    const diff = a.slice();
    ringSub(diff, b, 2);
    reduceModulus(diff, k);
    for (let i = 0; i < 500; i++) {
      expect(big(sum, i)).toBe((big(a, i) + big(b, i)) % mod);
      expect(big(diff, i)).toBe((((big(a, i) - big(b, i)) % mod) + mod) % mod);
    }
    expect(decodeRingExact(Uint32Array.of(0xffffffff, 2 ** 13 - 1), k)).toEqual([-1n]);
    // a view that is not 8-byte aligned gives the same result
    const odd = new Uint32Array(2 * 500 + 1).subarray(1);
    odd.set(a);
    ringAdd(odd, b, 2);
    reduceModulus(odd, k);
    expect(odd).toEqual(sum);
  });
});

describe('SecAgg+ graph', () => {
  const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
  const seed = new Uint8Array(32).fill(7);

  it('is k-regular and symmetric, the same for the same seed and clients in any order', () => {
    const g = secAggGraph(ids, 10, seed);
    const all = (graph: NeighbourGraph) => graph.ids().map((id) => [id, graph.get(id)]);
    for (const id of g.ids()) {
      const near = g.get(id)!;
      expect(near).toHaveLength(10);
      expect(near).not.toContain(id);
      for (const v of near) expect(g.get(v)).toContain(id);
    }
    expect(all(secAggGraph([...ids].reverse(), 10, seed))).toEqual(all(g));
    expect(all(secAggGraph(ids, 10, new Uint8Array(32).fill(8)))).not.toEqual(all(g));
  });

  it('is complete for k ≥ n − 1; degree O(log n) by default; refuses odd k', () => {
    expect(secAggGraph(ids.slice(0, 5), 10, seed).get('c0')).toHaveLength(4);
    expect(defaultNeighbours(100)).toBe(20);
    expect(defaultNeighbours(1000)).toBe(30);
    expect(() => secAggGraph(ids, 7, seed)).toThrow(/even/);
  });
});

describe('secure aggregation: the unmasked sum is exactly the survivors’ sum', () => {
  const clients = makeClients(20, [5, 3], 'updates');

  const cases: Array<[SecAggPhase, number]> = [];
  for (const phase of SECAGG_PHASES) for (const rate of [0.1, 0.3]) cases.push([phase, rate]);

  it('with no dropouts', async () => {
    const r = await run({ clients });
    expect(r.abort).toBeNull();
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    expect(r.result!.survivors).toEqual(clients.map((c) => c.id));
    expect(r.result!.ringSum).toEqual(plainRingSum(clients, plan));
    expect(r.result!.maskStreams).toBe(20); // one self mask each, no pairwise mask to remove
    // and the decoded sum is within n·2^-p of the float sum
    const exact = clients.reduce((a, c) => a + c.weights[0]![2]!, 0);
    expect(Math.abs(r.result!.sum[0]![2]! - exact)).toBeLessThan(20 * 2 ** -r.precisionBits);
  });

  it.each(cases)('with clients dropping at %s (%d of them)', async (phase, rate) => {
    const dropped = clients.filter((_, i) => (i * 7) % 20 < rate * 20).map((c) => c.id);
    expect(dropped).toHaveLength(rate * 20);
    const r = await run({ clients, drops: { [phase]: dropped } });
    expect(r.abort).toBeNull();
    // a client dropped before its masked input is out of the sum; after it, its input is in
    const early = ['ADVERTISE_KEYS', 'SHARE_KEYS', 'MASKED_INPUT'].includes(phase);
    const survivors = clients.filter((c) => !early || !dropped.includes(c.id));
    expect(r.result!.survivors).toEqual(survivors.map((c) => c.id));
    expect(r.result!.dropouts[phase]).toEqual(dropped);
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    expect(r.result!.ringSum).toEqual(plainRingSum(survivors, plan));
    expect(r.result!.mean[1]![0]).toBeCloseTo(r.result!.sum[1]![0]! / survivors.length, 12);
  });

  it('with 64-bit lanes (a large bound) and the complete graph of SecAgg', async () => {
    const wide = makeClients(8, [6], 'wide', 3e6);
    const r = await run({
      clients: wide,
      bound: 3e6,
      neighbours: 7,
      threshold: 5,
      drops: { SHARE_KEYS: ['dev-002'] },
    });
    expect(r.modulusBits).toBeGreaterThan(32);
    const survivors = wide.filter((c) => c.id !== 'dev-002');
    const plan = { bound: 3e6, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    expect(r.result!.ringSum).toEqual(plainRingSum(survivors, plan));
  });
});

describe('below the threshold the round aborts and the server learns nothing', () => {
  const clients = makeClients(10, [4], 'few');

  it.each(['ADVERTISE_KEYS', 'SHARE_KEYS', 'MASKED_INPUT', 'CONSISTENCY_CHECK'] as const)(
    'too few clients left after %s',
    async (phase) => {
      const r = await run({
        clients,
        threshold: 7,
        drops: { [phase]: clients.slice(0, 4).map((c) => c.id) },
      });
      expect(r.result).toBeNull();
      expect(r.abort).toMatchObject({ reason: 'below-threshold', phase });
    },
  );

  it('too few shares at unmasking: abort, no sum', async () => {
    const r = await run({
      clients,
      threshold: 7,
      drops: { UNMASKING: clients.slice(0, 4).map((c) => c.id) },
    });
    expect(r.result).toBeNull();
    expect(r.abort).toMatchObject({ reason: 'below-threshold', phase: 'UNMASKING' });
  });

  it('clients refuse to reveal shares on fewer than t consistency signatures (a server that lies)', async () => {
    const r = await run({
      clients,
      threshold: 7,
      intercept: (m, dir) => {
        if (dir === 'down' && m.phase === 'UNMASKING') {
          const keep = Object.keys(m.survivorSignatures).slice(0, 6);
          m.survivorSignatures = Object.fromEntries(keep.map((k) => [k, m.survivorSignatures[k]!]));
        }
        return [m];
      },
    });
    expect(r.result).toBeNull();
    expect(r.refusals.filter((x) => x.reason === 'below-threshold')).toHaveLength(10);
    expect(r.costs.UNMASKING.sentPerClient).toBe(0);
  });
});

/** Pearson's χ² statistic of the top byte of every lane over 256 equiprobable bins. */
function chiSquareTopByte(words: Uint32Array, modulusBits: number): number {
  const bins = new Float64Array(256);
  const shift = modulusBits - 8;
  for (const w of words) bins[(w >>> shift) & 255]!++;
  const e = words.length / 256;
  return bins.reduce((a, o) => a + ((o - e) * (o - e)) / e, 0);
}

describe('a masked input is uniform', () => {
  it('passes χ² (255 dof, α = 0.001) for an all-zero and an all-B update, unlike the update itself', async () => {
    const d = 1 << 15;
    const zeros = { id: 'dev-a', weights: [new Float32Array(d)] };
    const ones = { id: 'dev-b', weights: [new Float32Array(d).fill(1)] };
    const others = makeClients(3, [d], 'uniform').map((c, i) => ({ ...c, id: `dev-${'cde'[i]}` }));
    const inputs: Record<string, Uint32Array> = {};
    const r = await run({
      clients: [zeros, ones, ...others],
      threshold: 3,
      intercept: (m, dir) => {
        if (dir === 'up' && m.maskedInput) {
          const b = Uint8Array.from(m.maskedInput);
          inputs[m.senderDeviceId!] = new Uint32Array(b.buffer);
        }
        return [m];
      },
    });
    expect(r.result).not.toBeNull();
    const CRITICAL = 330.52; // χ²(255) upper 0.1% point
    const k = r.modulusBits;
    expect(chiSquareTopByte(inputs['dev-a']!, k)).toBeLessThan(CRITICAL);
    expect(chiSquareTopByte(inputs['dev-b']!, k)).toBeLessThan(CRITICAL);
    // the test has power: the plain encodings are far from uniform
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: k };
    expect(chiSquareTopByte(encodeFixedPoint(others[0]!.weights, plan), k)).toBeGreaterThan(CRITICAL);
  });
});

interface Fleet {
  ids: string[];
  server: SecAggServer;
  clients: Map<string, SecAggClient>;
  keys: Map<string, KeyObject>;
}

function fleet(
  n: number,
  weights: (id: string) => Float32Array[],
  randomFor: (id: string) => RandomBytes,
): Fleet {
  const ids = Array.from({ length: n }, (_, i) => `d${i}`);
  const keys = new Map(ids.map((id) => [id, generateKeyPairSync('ed25519').privateKey]));
  const verify = ed25519Verifier(new Map([...keys].map(([id, k]) => [id, createPublicKey(k)])));
  const config = planSecAgg({ clients: ids, threshold: 4, layerLengths: [3], neighbours: n - 1 });
  const server = new SecAggServer({ ...session, clients: ids, config, verify });
  const clients = new Map(
    ids.map((id) => [
      id,
      new SecAggClient({
        ...session,
        deviceId: id,
        sign: ed25519Signer(keys.get(id)!),
        verify,
        input: () => weights(id),
        random: randomFor(id),
      }),
    ]),
  );
  return { ids, server, clients, keys };
}

/** Delivers requests, collects replies (optionally rewritten), feeds them to the server; returns the replies. */
async function step(
  f: Fleet,
  requests: Array<{ to: string; message: SecAggMessage }>,
  rewrite: (from: string, m: SecAggMessage) => SecAggMessage[] = (_f, m) => [m],
): Promise<{ replies: SecAggMessage[]; verdicts: Array<{ from: string; reason?: string }> }> {
  const replies: SecAggMessage[] = [];
  const verdicts: Array<{ from: string; reason?: string }> = [];
  for (const { to, message } of requests) {
    const s = await f.clients.get(to)!.receive(message);
    if (s.ok) for (const m of s.send) replies.push(...rewrite(to, m));
  }
  for (const m of replies) {
    const v = await f.server.receive(m);
    verdicts.push({ from: m.senderDeviceId!, reason: v.accepted ? undefined : v.reason });
  }
  return { replies, verdicts };
}

describe('equivocation, a greedy server, replays and out-of-phase messages are refused', () => {
  const w = (id: string) => [Float32Array.of(0.25, -0.5, Number(id.slice(1)) / 10)];

  it('a client that advertises two key sets is refused and excluded; the others finish', async () => {
    const f = fleet(6, w, (id) => seededRandomBytes(id));
    // the same device (same signing key) with a second, validly signed key set
    const twin = new SecAggClient({
      ...session,
      deviceId: 'd2',
      sign: ed25519Signer(f.keys.get('d2')!),
      verify: () => true,
      input: () => w('d2'),
      random: seededRandomBytes('another'),
    });
    const start = f.server.start();
    const second = await twin.receive(start.find((o) => o.to === 'd2')!.message);
    if (!second.ok) throw new Error(second.message);
    const { verdicts } = await step(f, start, (from, m) => (from === 'd2' ? [m, second.send[0]!] : [m]));
    expect(verdicts.filter((v) => v.reason)).toEqual([{ from: 'd2', reason: 'equivocation' }]);
    expect(await f.server.receive(second.send[0]!)).toMatchObject({ reason: 'equivocation' });
    let out = await f.server.endPhase();
    expect(out.map((o) => o.to)).toEqual(['d0', 'd1', 'd3', 'd4', 'd5']);
    for (let i = 0; i < 4; i++) {
      await step(f, out);
      out = await f.server.endPhase();
    }
    expect(f.server.result().survivors).toEqual(['d0', 'd1', 'd3', 'd4', 'd5']);
    expect(f.server.result().dropouts.ADVERTISE_KEYS).toEqual(['d2']);
    expect(f.server.result().equivocators).toEqual(['d2']);
  });

  it('a client whose shares do not all come from one secret is detected at unmasking', async () => {
    // d1's twin has the same keys (same first 64 random bytes) but another self-mask seed
    const base = (id: string) => seededRandomBytes(id);
    const f = fleet(6, w, base);
    const keysOnly = base('d1');
    const prefix = Uint8Array.from(keysOnly(64));
    const other = seededRandomBytes('other-seed');
    let used = 0;
    const twinRandom: RandomBytes = (len) => {
      if (used < 64) {
        used += len;
        return prefix.slice(used - len, used);
      }
      return other(len);
    };
    const twin = new SecAggClient({
      ...session,
      deviceId: 'd1',
      sign: () => new Uint8Array(64),
      verify: () => true,
      input: () => w('d1'),
      random: twinRandom,
    });
    const start = f.server.start();
    await twin.receive(start.find((o) => o.to === 'd1')!.message);
    await step(f, start);
    const shareReq = await f.server.endPhase();
    const twinShares = await twin.receive(shareReq.find((o) => o.to === 'd1')!.message);
    expect(twinShares.ok).toBe(true);
    const fake = (twinShares as { send: SecAggMessage[] }).send[0]!;
    // holders d3, d4, d5 get shares of the twin's seed; d0, d2 (and d1 itself) of the real one: no 4 agree
    await step(f, shareReq, (from, m) =>
      from === 'd1'
        ? [
            {
              ...m,
              encryptedShares: {
                ...m.encryptedShares,
                d3: fake.encryptedShares['d3']!,
                d4: fake.encryptedShares['d4']!,
                d5: fake.encryptedShares['d5']!,
              },
            },
          ]
        : [m],
    );
    let out = await f.server.endPhase();
    for (let i = 0; i < 2; i++) {
      await step(f, out);
      out = await f.server.endPhase();
    }
    await step(f, out);
    await expect(f.server.endPhase()).rejects.toMatchObject({ reason: 'equivocation', phase: 'UNMASKING' });
    expect(() => f.server.result()).toThrow();
  });

  it('a server asking for both shares of one client, or asking twice, is refused', async () => {
    const f = fleet(6, w, (id) => seededRandomBytes(id));
    let out = f.server.start();
    await step(f, out);
    out = await f.server.endPhase();
    await step(f, out);
    out = await f.server.endPhase();
    // d5 drops before its masked input
    await step(
      f,
      out.filter((o) => o.to !== 'd5'),
    );
    out = await f.server.endPhase();
    await step(f, out);
    out = await f.server.endPhase();
    const toD0 = out.find((o) => o.to === 'd0')!.message;
    expect(toD0.dropped).toEqual(['d5']);
    const greedy = { ...toD0, dropped: ['d3', 'd5'] };
    expect(await f.clients.get('d0')!.receive(greedy)).toMatchObject({ ok: false, reason: 'both-kinds' });
    // d1 answers once; a second request with another dropped list is refused
    const toD1 = out.find((o) => o.to === 'd1')!.message;
    expect((await f.clients.get('d1')!.receive(toD1)).ok).toBe(true);
    expect(await f.clients.get('d1')!.receive(toD1)).toMatchObject({ ok: false, reason: 'replay' });
    expect(await f.clients.get('d1')!.receive({ ...toD1, dropped: [] })).toMatchObject({
      ok: false,
      reason: 'out-of-phase',
    });
    // a survivor list other than the signed one, or a forged signature, makes a client stop
    const toD2 = out.find((o) => o.to === 'd2')!.message;
    expect(
      await f.clients.get('d2')!.receive({ ...toD2, participants: toD2.participants.slice(1) }),
    ).toMatchObject({
      ok: false,
      reason: 'inconsistent',
    });
    const toD3 = out.find((o) => o.to === 'd3')!.message;
    const forged = { ...toD3.survivorSignatures, d0: new Uint8Array(64) };
    expect(await f.clients.get('d3')!.receive({ ...toD3, survivorSignatures: forged })).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
    expect(await f.clients.get('d3')!.receive(toD3)).toMatchObject({ ok: false, reason: 'aborted' });
  });

  it('replayed, out-of-phase and foreign messages are refused without effect', async () => {
    const clients = makeClients(12, [4], 'replay');
    let kept: SecAggMessage | null = null;
    const r = await run({
      clients,
      threshold: 6,
      intercept: (m, dir) => {
        if (dir === 'up' && m.phase === 'SHARE_KEYS' && !kept) kept = m;
        if (dir === 'up' && m.phase === 'MASKED_INPUT' && kept) {
          // replayed input (same bytes), an old-phase message again, the same one altered, another round's
          return [
            m,
            m,
            kept,
            { ...kept, selfMaskCommitment: new Uint8Array(32) },
            { ...m, roundId: 'other' },
          ];
        }
        if (dir === 'down' && m.phase === 'CONSISTENCY_CHECK') return [m, m, { ...m, phase: 'SHARE_KEYS' }];
        return [m];
      },
    });
    expect(r.abort).toBeNull();
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    expect(r.result!.ringSum).toEqual(plainRingSum(clients, plan));
    const by = (who: string, reason: string) =>
      r.refusals.filter((x) => x.reason === reason && (who === 'server') === (x.by === 'server'));
    expect(by('server', 'replay')).toHaveLength(24); // each input twice, and the first SHARE_KEYS with each
    expect(by('server', 'out-of-phase')).toHaveLength(12); // the altered old message
    expect(by('server', 'wrong-round')).toHaveLength(12);
    expect(by('client', 'replay')).toHaveLength(12);
    expect(by('client', 'out-of-phase')).toHaveLength(12);
  });
});

describe('bad input at the boundaries', () => {
  it('a client with a NaN or an out-of-bound update drops out; the rest finish', async () => {
    const clients = makeClients(10, [3], 'bad');
    clients[2] = { ...clients[2]!, weights: [Float32Array.of(0, Number.NaN, 0)] };
    clients[5] = { ...clients[5]!, weights: [Float32Array.of(0, 1.5, 0)] };
    const r = await run({ clients, threshold: 5 });
    expect(r.refusals.filter((x) => x.reason === 'bad-input').map((x) => x.by)).toEqual([
      'dev-002',
      'dev-005',
    ]);
    expect(r.result!.dropouts.MASKED_INPUT).toEqual(['dev-002', 'dev-005']);
    const survivors = clients.filter((_, i) => i !== 2 && i !== 5);
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    expect(r.result!.ringSum).toEqual(plainRingSum(survivors, plan));
  });

  it('a client refuses a config whose modulus lets the sum wrap, or a threshold beyond the neighbourhood', async () => {
    const ids = ['a', 'b', 'c'];
    const client = new SecAggClient({
      ...session,
      deviceId: 'a',
      sign: () => new Uint8Array(64),
      verify: () => true,
      input: () => [],
    });
    const config = planSecAgg({ clients: ids, threshold: 2, layerLengths: [2] });
    const m = {
      ...emptyMessage(session, 'ADVERTISE_KEYS', null),
      participants: ids,
      config: { ...config, modulusBits: 10 },
    };
    expect(await client.receive(m)).toMatchObject({ ok: false, reason: 'bad-config' });
    expect(() => planSecAgg({ clients: ids, threshold: 4, layerLengths: [2] })).toThrow(/threshold/);
  });

  it('the server refuses unknown senders, malformed keys and bad signatures', async () => {
    const f = fleet(
      4,
      (id) => w2(id),
      (id) => seededRandomBytes(id),
    );
    f.server.start();
    expect(await f.server.receive(emptyMessage(session, 'ADVERTISE_KEYS', 'stranger'))).toMatchObject({
      reason: 'unknown-sender',
    });
    expect(await f.server.receive(emptyMessage(session, 'ADVERTISE_KEYS', 'd0'))).toMatchObject({
      reason: 'malformed',
    });
    const forged = {
      ...emptyMessage(session, 'ADVERTISE_KEYS', 'd0'),
      cipherPublicKey: new Uint8Array(32).fill(1),
      maskPublicKey: new Uint8Array(32).fill(2),
      keySignature: new Uint8Array(64),
    };
    expect(await f.server.receive(forged)).toMatchObject({ reason: 'bad-signature' });
    expect(f.server.pending()).toEqual(['d0', 'd1', 'd2', 'd3']);
  });
});
const w2 = (id: string) => [Float32Array.of(Number(id.slice(1)) / 10)];

describe('bucketed robust mode', () => {
  it('splits clients into seeded buckets and a robust rule over bucket means resists attackers', async () => {
    const n = 24;
    const honest = makeClients(n, [4], 'buckets').map((c, i) => ({
      ...c,
      weights: [c.weights[0]!.map((v) => 0.1 + v * 0.01)],
      id: `dev-${String(i).padStart(3, '0')}`,
    }));
    const attackers = new Set(['dev-003', 'dev-017']);
    const clients = honest.map((c) =>
      attackers.has(c.id) ? { ...c, weights: [new Float32Array(4).fill(-1)] } : c,
    );
    const seed = new Uint8Array(32).fill(42);
    const buckets = secAggBuckets(
      clients.map((c) => c.id),
      4,
      seed,
    );
    expect(buckets).toHaveLength(6);
    expect(buckets.flat().sort()).toEqual(clients.map((c) => c.id));
    expect(secAggBuckets([...clients.map((c) => c.id)].reverse(), 4, seed)).toEqual(buckets);
    const results = [];
    for (const [b, members] of buckets.entries()) {
      const r = await run({
        clients: clients.filter((c) => members.includes(c.id)),
        threshold: 3,
        bucket: b + 1,
      });
      results.push(r.result!);
    }
    const robust = robustOverBuckets(results, createRule('median')).weights[0]!;
    const plain = results.reduce((a, r) => a + r.sum[0]![0]!, 0) / n;
    expect(Math.abs(robust[0]! - 0.1)).toBeLessThan(0.02);
    expect(Math.abs(plain - 0.1)).toBeGreaterThan(0.05);
  });
});
