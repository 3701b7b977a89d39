// Number and text formatting for the report: every figure is shown the same way in the headline, the tables and
// the chart axes.

/** 0.9173 → "91.7%". */
export function percent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** The signed gap between two fractions in percentage points: "1.2 points below", "level with". */
export function gapInPoints(value: number, reference: number): string {
  const points = (value - reference) * 100;
  if (Math.abs(points) < 0.05) return 'level with';
  return `${Math.abs(points).toFixed(1)} points ${points < 0 ? 'below' : 'above'}`;
}

const BYTE_UNITS = [
  { unit: 'B', size: 1 },
  { unit: 'kB', size: 1e3 },
  { unit: 'MB', size: 1e6 },
  { unit: 'GB', size: 1e9 },
] as const;

/** The SI unit that shows `max` with one to three digits before the point. */
export function byteUnit(max: number): { unit: string; size: number } {
  let chosen: { unit: string; size: number } = BYTE_UNITS[0];
  for (const candidate of BYTE_UNITS) if (max >= candidate.size) chosen = candidate;
  return chosen;
}

/** 37588992 → "37.6 MB". */
export function bytes(value: number): string {
  const { unit, size } = byteUnit(value);
  return size === 1 ? `${value} B` : `${(value / size).toFixed(1)} ${unit}`;
}

/** 0.31 → "0.31 ms", 38.2 → "38 ms". */
export function milliseconds(value: number | null): string {
  if (value === null) return 'n/a';
  return `${value < 10 ? Number(value.toPrecision(2)) : Math.round(value)} ms`;
}

/** 134.4 → "2 min 14 s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** Integers with thousands separators, independent of the machine's locale. */
export function integer(value: number): string {
  return value.toLocaleString('en-US');
}

/** 1 → "1 device", 2 → "2 devices". */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${integer(n)} ${n === 1 ? singular : pluralForm}`;
}

/** A model version as people say it: "v11" (keys of the fleet version mix may be any string). */
export function versionName(version: number | string): string {
  return /^\d+$/.test(String(version)) ? `v${version}` : String(version);
}

/** 1e-5 → "1e-5", 0.05 → "0.05": small probabilities the way papers write them. */
export function probability(value: number): string {
  return value < 0.001 ? value.toExponential() : String(value);
}

/** "2026-12-07T09:00:04.118Z" → "2026-12-07 09:00:04 UTC". */
export function timestamp(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
