// Shared by every benchmark: one result file per benchmark and the same figures printed as a table.
// Benchmarks run with Node's own type stripping (see scripts/bench.mjs), so this file uses erasable syntax only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Peer {
  name: string;
  value: number;
}

export interface Figure {
  metric: string;
  unit: string;
  value: number;
  /** The peer measured in the same run on the same input, or null when it could not run (say why in notes). */
  peer: Peer | null;
  /** value / peer.value, or null without a peer. */
  ratio: number | null;
}

export interface Report {
  name: string;
  figures: Figure[];
  notes?: string[];
}

export function figure(metric: string, unit: string, value: number, peer: Peer | null = null): Figure {
  return { metric, unit, value, peer, ratio: peer && peer.value !== 0 ? value / peer.value : null };
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e7 || abs < 1e-3)) return value.toExponential(3);
  return value.toLocaleString('en-US', { maximumFractionDigits: abs >= 100 ? 0 : 3 });
}

/** Writes bench/results/<name>.json and prints the figures as a table. */
export function writeReport(report: Report): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${report.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const rows = report.figures.map((f) => [
    f.metric,
    `${fmt(f.value)} ${f.unit}`,
    f.peer ? `${f.peer.name}: ${fmt(f.peer.value)} ${f.unit}` : 'no peer',
    f.ratio === null ? '-' : `${fmt(f.ratio)}x`,
  ]);
  const header = ['metric', 'edgefl', 'peer (same run)', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(`\n== ${report.name} ==`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) console.log(line(row));
  for (const note of report.notes ?? []) console.log(`note: ${note}`);
  console.log(`wrote bench/results/${report.name}.json`);
}

/** Percentile of a sorted-ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
