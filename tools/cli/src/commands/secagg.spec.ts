import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeFixedPoint,
  messageDigest,
  reduceModulus,
  ringAdd,
  runSecAggInProcess,
  seededRandomBytes,
} from '@edgefl/fl';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../../test/run-in-process.js';
import { secAggWireBytes, throughAvro } from '@edgefl/contracts/edge';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-cli-secagg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const run = runInProcess;

/** 12 clients, two layers (3 + 2), values in [-1, 1] that no fixed-point grid holds exactly. */
const clients = Array.from({ length: 12 }, (_, i) => ({
  num_examples: 1 + i,
  weights: [
    [Math.sin(i + 1) * 0.999, Math.cos(i * 3.7) * 0.5, (i - 6) / 7.3],
    [1 / (i + 3), -0.123456789],
  ],
}));

interface Output {
  sum: number[][];
  mean: number[][];
  survivors: Array<string | number>;
  precisionBits: number;
  bytesPerClient: Record<string, number>;
}

async function secagg(args: string[], input: unknown = { clients }) {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}.json`);
  const r = await run(['secagg', 'run', '--in', file('in.json', input), '--out', out, ...args]);
  return { ...r, result: r.code === 0 ? (JSON.parse(readFileSync(out, 'utf8')) as Output) : null };
}

describe('edgefl secagg run', () => {
  it('writes the survivors’ sum and mean within n·2^-p, with per-phase bytes', async () => {
    const r = await secagg([
      '--threshold',
      '6',
      '--drop',
      'share-keys:3',
      'masked-input:5,7',
      '--drop',
      'unmask:1',
      '--seed',
      'oracle',
    ]);
    expect(r.code).toBe(0);
    const o = r.result!;
    // 3 sent no shares, 5 and 7 no input; 1 dropped after its input was in
    expect(o.survivors).toEqual([0, 1, 2, 4, 6, 8, 9, 10, 11]);
    expect(o.precisionBits).toBeGreaterThanOrEqual(16);
    const n = o.survivors.length;
    for (let l = 0; l < 2; l++)
      for (let j = 0; j < o.sum[l]!.length; j++) {
        const exact = o.survivors.reduce<number>((a, id) => a + clients[id as number]!.weights[l]![j]!, 0);
        expect(Math.abs(o.sum[l]![j]! - Math.fround(exact))).toBeLessThanOrEqual(n * 2 ** -o.precisionBits);
        expect(o.mean[l]![j]).toBeCloseTo(o.sum[l]![j]! / n, 12);
      }
    expect(Object.keys(o.bytesPerClient)).toEqual([
      'advertise-keys',
      'share-keys',
      'masked-input',
      'consistency',
      'unmask',
    ]);
    // the masked input is 5 coordinates × 4 bytes plus the Avro envelope
    expect(o.bytesPerClient['masked-input']).toBeGreaterThan(20);
    expect(Object.values(o.bytesPerClient).every((b) => b > 0)).toBe(true);
    // the same seed, the same result
    expect(
      (
        await secagg([
          '--threshold',
          '6',
          '--drop',
          'share-keys:3',
          'masked-input:5,7',
          'unmask:1',
          '--seed',
          'oracle',
        ])
      ).result,
    ).toEqual(o);
  });

  it('names clients by their "id" when they have one', async () => {
    const named = { clients: clients.slice(0, 5).map((c, i) => ({ ...c, id: `pos-${i}` })) };
    const r = await secagg(['--threshold', '3', '--drop', 'masked-input:pos-2'], named);
    expect(r.code).toBe(0);
    expect(r.result!.survivors).toEqual(['pos-0', 'pos-1', 'pos-3', 'pos-4']);
  });

  it('honours --bound and --neighbours (SecAgg+ graph)', async () => {
    const scaled = {
      clients: clients.map((c) => ({ ...c, weights: c.weights.map((l) => l.map((v) => v * 40)) })),
    };
    const r = await secagg(['--threshold', '0.6', '--bound', '40', '--neighbours', '4'], scaled);
    expect(r.code).toBe(0);
    const exact = scaled.clients.reduce((a, c) => a + c.weights[0]![0]!, 0);
    expect(Math.abs(r.result!.sum[0]![0]! - exact)).toBeLessThanOrEqual(
      12 * 2 ** -r.result!.precisionBits + 1e-4,
    );
  });

  it('exits 3 with one line when the round aborts below the threshold', async () => {
    const r = await secagg(['--threshold', '10', '--drop', 'masked-input:0,1,2']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^edgefl: round aborted in MASKED_INPUT: .+\n$/);
  });

  it.each([
    ['a value outside [-B, B]', ['--threshold', '3', '--bound', '0.5']],
    ['an unknown phase', ['--threshold', '3', '--drop', 'training:1']],
    ['an unknown client', ['--threshold', '3', '--drop', 'unmask:99']],
    ['a threshold beyond the neighbourhood', ['--threshold', '13']],
    ['a threshold of 1', ['--threshold', '1']],
    ['a fractional threshold above 1', ['--threshold', '1.5']],
    ['odd neighbours beyond the graph', ['--threshold', '3', '--neighbours', '0']],
    ['a bad bound', ['--threshold', '3', '--bound', '-1']],
  ])('bad parameters → exit 2 and one line: %s', async (_name, args) => {
    const r = await secagg(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^edgefl: .+\n$/);
  });

  it.each([
    ['one client', { clients: clients.slice(0, 1) }],
    ['ragged layers', { clients: [clients[0], { ...clients[1], weights: [[0.1], [0.2]] }] }],
    [
      'a duplicated id',
      {
        clients: [
          { ...clients[0], id: 'a' },
          { ...clients[1], id: 'a' },
        ],
      },
    ],
    ['not JSON', '{'],
  ])('bad input file → exit 2: %s', async (_name, input) => {
    const r = await secagg(['--threshold', '2'], input);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^edgefl: .+\n$/);
  });
});

describe('contract: every protocol message travels as the Avro SecAggMessage event', () => {
  it('a round whose messages all go through the schema gives the exact sum', async () => {
    const ids = Array.from({ length: 9 }, (_, i) => `dev-${i}`);
    const weights = ids.map((_, i) => [Float32Array.of(i / 10, -i / 20, 0.5)]);
    let messages = 0;
    const r = await runSecAggInProcess({
      tenant: 'acme',
      roundId: 'round-1',
      clients: ids.map((id, i) => ({ id, weights: weights[i]! })),
      threshold: 5,
      drops: { MASKED_INPUT: ['dev-4'], UNMASKING: ['dev-7'] },
      random: seededRandomBytes('contract'),
      messageBytes: secAggWireBytes,
      intercept: (m) => {
        messages++;
        const back = throughAvro(m);
        expect(messageDigest(back)).toBe(messageDigest(m)); // every field, byte for byte
        return [back];
      },
    });
    expect(r.abort).toBeNull();
    expect(r.refusals).toEqual([]);
    expect(messages).toBeGreaterThan(5 * 8);
    const plan = { bound: 1, precisionBits: r.precisionBits, modulusBits: r.modulusBits };
    const survivors = weights.filter((_, i) => i !== 4);
    const acc = encodeFixedPoint(survivors[0]!, plan);
    for (const w of survivors.slice(1)) ringAdd(acc, encodeFixedPoint(w, plan), 1);
    reduceModulus(acc, plan.modulusBits);
    expect(r.result!.ringSum).toEqual(acc);
  });
});
