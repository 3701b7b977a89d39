// The tensor-aware delta codec of libs/model on DESIGN.md §8's "5 MB model" (1280 → 1024 → 1: 1,310,720 weights in
// the 1280×1024 matrix, N(0, 0.02) initialised, seeded), as an edgefl artifact, against bsdiff and
// `zstd -19 --patch-from` run on the same two files in the same run.
//   (a) fine-tune: 2% of all weights, at random positions, each moved by a relative N(0, 1e-3) step
//       (the same per-weight magnitude as (b); the issue fixes the magnitude only for (b)). Also shown at 1e-2.
//   (b) dense update: every weight moved by a relative N(0, 1e-3) step.
// Targets (issue 4): (a) lossless ≤ 1.5% of the artifact and ≥ 20× faster to build than bsdiff; (b) lossless
// ≤ 50%, bounded-error ≤ 15% with ≤ 1% relative error of the update.
// Times are wall-clock medians of our in-process build/apply; the peers' times include starting their process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyDelta,
  createDelta,
  encodeArtifact,
  FIVE_MB_MODEL,
  initWeights,
  SeededRng,
} from '@edgefl/model';
import type { NamedTensor } from '@edgefl/model';
import { figure, writeReport, type Figure } from './lib/report.ts';

const RUNS = Number(process.env.MODEL_DELTA_BENCH_RUNS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'edgefl-bench-model-delta-'));
const notes: string[] = [];
const figures: Figure[] = [];

const spec = FIVE_MB_MODEL;
const base = initWeights(spec, 20261124);
const artifactOf = (tensors: NamedTensor[]) =>
  encodeArtifact({ spec, tensors, metadata: { modelId: 'five-mb' } });
const oldBytes = artifactOf(base);

function fineTune(fraction: number, relative: number, seed: number): Uint8Array {
  const rng = new SeededRng(seed);
  const tensors = base.map((t) => ({ ...t, data: t.data.slice() }));
  const total = tensors.reduce((n, t) => n + t.data.length, 0);
  const picked = new Set<number>();
  while (picked.size < Math.round(total * fraction)) picked.add(rng.nextInt(total));
  for (const flat of picked) {
    let i = flat;
    for (const t of tensors) {
      if (i < t.data.length) {
        // biases start at zero: a relative step would leave them unchanged, so they get a small absolute one
        t.data[i] =
          t.data[i] === 0 ? 0.02 * relative * rng.normal() : t.data[i]! * (1 + relative * rng.normal());
        break;
      }
      i -= t.data.length;
    }
  }
  return artifactOf(tensors);
}

function denseUpdate(relative: number, seed: number): Uint8Array {
  const rng = new SeededRng(seed);
  return artifactOf(
    base.map((t) => ({
      ...t,
      data: t.data.map((v) => (v === 0 ? 0.02 * relative * rng.normal() : v * (1 + relative * rng.normal()))),
    })),
  );
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

interface PeerRun {
  size: number;
  buildMs: number;
  applyMs: number;
}

function available(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
}
const hasBsdiff = available('bsdiff', []) && available('bspatch', []);
const hasZstd = available('zstd', ['--version']);
if (!hasBsdiff) notes.push('bsdiff/bspatch not installed (Debian package bsdiff): bsdiff peer skipped');
if (!hasZstd) notes.push('zstd not installed (Debian package zstd): zstd --patch-from peer skipped');

function runPeer(name: 'bsdiff' | 'zstd', oldPath: string, newPath: string, label: string): PeerRun | null {
  if ((name === 'bsdiff' && !hasBsdiff) || (name === 'zstd' && !hasZstd)) return null;
  const patch = join(dir, `${label}.${name}`);
  const out = join(dir, `${label}.${name}.out`);
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString().trim()}`);
  };
  const build = timed(() =>
    name === 'bsdiff'
      ? run('bsdiff', [oldPath, newPath, patch])
      : run('zstd', ['-q', '-f', '-19', `--patch-from=${oldPath}`, newPath, '-o', patch]),
  );
  const apply = timed(() =>
    name === 'bsdiff'
      ? run('bspatch', [oldPath, out, patch])
      : run('zstd', ['-q', '-f', '-d', `--patch-from=${oldPath}`, patch, '-o', out]),
  );
  if (Buffer.compare(readFileSync(out), readFileSync(newPath)) !== 0)
    throw new Error(`${name} did not rebuild the target`);
  return { size: readFileSync(patch).byteLength, buildMs: build.ms, applyMs: apply.ms };
}

function scenario(
  label: string,
  target: Uint8Array,
  maxRelError: number | undefined,
  withPeers: boolean,
): void {
  const builds: number[] = [];
  const applies: number[] = [];
  let result = createDelta(oldBytes, target, maxRelError === undefined ? {} : { maxRelError });
  for (let i = 0; i < RUNS; i++) {
    const b = timed(() => createDelta(oldBytes, target, maxRelError === undefined ? {} : { maxRelError }));
    builds.push(b.ms);
    result = b.value;
    const a = timed(() => applyDelta(oldBytes, result.delta));
    applies.push(a.ms);
    if (Buffer.compare(a.value, result.target) !== 0) throw new Error(`${label}: rebuilt bytes differ`);
  }
  const pct = (n: number) => (100 * n) / target.byteLength;
  const mode = maxRelError === undefined ? 'lossless' : `bounded E=${maxRelError}`;
  const name = `${label} ${mode}`;
  if (result.fellBackToFull) notes.push(`${name}: delta not smaller than the artifact, fell back to full`);
  let bs: PeerRun | null = null;
  let zs: PeerRun | null = null;
  if (withPeers) {
    const oldPath = join(dir, 'old.eflm');
    const newPath = join(dir, `${label}.eflm`);
    writeFileSync(oldPath, oldBytes);
    writeFileSync(newPath, target);
    bs = runPeer('bsdiff', oldPath, newPath, label);
    zs = runPeer('zstd', oldPath, newPath, label);
  }
  if (withPeers) {
    figures.push(
      figure(
        `${name}: delta size vs bsdiff`,
        '% of artifact',
        pct(result.delta.byteLength),
        bs && { name: 'bsdiff', value: pct(bs.size) },
      ),
    );
    figures.push(
      figure(
        `${name}: delta size vs zstd -19 --patch-from`,
        '% of artifact',
        pct(result.delta.byteLength),
        zs && { name: 'zstd', value: pct(zs.size) },
      ),
    );
    figures.push(
      figure(
        `${name}: build time vs bsdiff`,
        'ms',
        median(builds),
        bs && { name: 'bsdiff', value: bs.buildMs },
      ),
    );
    figures.push(
      figure(
        `${name}: build time vs zstd -19 --patch-from`,
        'ms',
        median(builds),
        zs && { name: 'zstd', value: zs.buildMs },
      ),
    );
    figures.push(
      figure(
        `${name}: apply time vs bspatch`,
        'ms',
        median(applies),
        bs && { name: 'bspatch', value: bs.applyMs },
      ),
    );
    figures.push(
      figure(
        `${name}: apply time vs zstd -d --patch-from`,
        'ms',
        median(applies),
        zs && { name: 'zstd', value: zs.applyMs },
      ),
    );
  } else {
    // the same inputs as a scenario that ran the peers: only our figures
    figures.push(figure(`${name}: delta size`, '% of artifact', pct(result.delta.byteLength)));
    figures.push(figure(`${name}: build time`, 'ms', median(builds)));
    figures.push(figure(`${name}: apply time`, 'ms', median(applies)));
  }
  if (maxRelError !== undefined)
    figures.push(figure(`${name}: relative L2 error of the update`, 'ratio', result.relError));
  console.log(
    `${name}: ${result.delta.byteLength} bytes (${pct(result.delta.byteLength).toFixed(3)}%), mode ${result.mode}, relative error ${result.relError.toExponential(3)}`,
  );
}

try {
  console.log(`artifact: ${oldBytes.byteLength} bytes; ${RUNS} runs of our build/apply per scenario`);
  scenario('(a) fine-tune 2% @1e-3', fineTune(0.02, 1e-3, 1), undefined, true);
  scenario("(a') fine-tune 2% @1e-2", fineTune(0.02, 1e-2, 2), undefined, false);
  const dense = denseUpdate(1e-3, 3);
  scenario('(b) dense @1e-3', dense, undefined, true);
  scenario('(b) dense @1e-3', dense, 0.01, false);
  scenario('(b) dense @1e-3', dense, 0.05, false);
  notes.push(
    'bounded-error floor: the rate-distortion bound of an i.i.d. Gaussian update is log2(1/E) bits per value, 6.64 bits (20.8% of 32) at E = 1%; this update scales with |weight|, which a coder conditioning on the old weight could exploit (about 18% by our estimate), but 15% at E = 1% is out of reach on this workload. E = 5% shows the error at which the size falls under 15%',
  );
  notes.push(
    "(a') is the same fine-tune with ten times larger steps: each changed value then needs about 3 more bits",
  );
  notes.push('peers run once per scenario on the same files; their times include process start (a few ms)');
  writeReport({ name: 'model-delta', figures, notes });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
