import * as hdr from 'hdr-histogram-js';
import type { FeatureSummary } from '@edgefl/contracts';
import type { Histogram } from 'hdr-histogram-js';
import { mergeSummaries } from '../analysis/drift.js';

/** Equal-width bins of [0, 1] for confidences (and single-output predictions). */
export const CONFIDENCE_BINS = 10;
/** Prediction bins: the argmax class (0..31) of a multi-output prediction, or bins of [0, 1] for one output. */
export const PREDICTION_BINS = 32;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** The two rollup resolutions: 1-minute buckets (kept for the raw retention) and 1-hour ones (kept longer). */
export type Resolution = 'm' | 'h';
export const RESOLUTIONS: Record<Resolution, number> = { m: MINUTE_MS, h: HOUR_MS };

/** What one series (tenant × model × version × group) accumulated in one bucket. Mergeable. */
export interface Rollup {
  inferences: number;
  errors: number;
  escalations: number;
  fallbacks: number;
  labeled: number;
  correct: number;
  confidenceSum: number;
  confidenceBins: number[];
  predictionBins: number[];
  /** Latency in microseconds (an HDR histogram: merged exactly, percentiles within 0.1%). */
  latency: Histogram;
  heartbeats: number;
  /** Heartbeats' feature summaries, pooled per feature (analysis/drift.ts mergeSummaries). */
  features: Record<string, FeatureSummary>;
}

/**
 * HDR histograms of microseconds, 1 µs to 60 s (auto-resized beyond), 2 significant digits (values within 1 %),
 * packed: memory grows with the values used, and merging (`add`) walks ~2,400 buckets rather than ~23,000 at 3 digits
 * up to an hour (the cost that dominated intake and queries when measured).
 */
export function newLatencyHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 'packed',
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 2,
    autoResize: true,
  });
}

export function emptyRollup(): Rollup {
  return {
    inferences: 0,
    errors: 0,
    escalations: 0,
    fallbacks: 0,
    labeled: 0,
    correct: 0,
    confidenceSum: 0,
    confidenceBins: new Array<number>(CONFIDENCE_BINS).fill(0),
    predictionBins: new Array<number>(PREDICTION_BINS).fill(0),
    latency: newLatencyHistogram(),
    heartbeats: 0,
    features: {},
  };
}

/** The bin of a value in [0, 1] among `bins` equal bins (1 falls in the last). */
export function binOf(value: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.floor(value * bins)));
}

/** The prediction's bin: its argmax class for several outputs, its value's bin of [0, 1] for one. */
export function predictionBin(prediction: readonly number[]): number {
  if (prediction.length === 1) return binOf(prediction[0]!, CONFIDENCE_BINS);
  let best = 0;
  for (let i = 1; i < prediction.length; i++) if (prediction[i]! > prediction[best]!) best = i;
  return Math.min(PREDICTION_BINS - 1, best);
}

/** The predicted label a prediction stands for (compared with a log's label): the class index, or 0/1. */
export function predictedLabel(prediction: readonly number[]): string {
  if (prediction.length === 1) return prediction[0]! >= 0.5 ? '1' : '0';
  return String(predictionBin(prediction));
}

const BINARY_LABELS: Record<string, string> = { true: '1', false: '0', '1': '1', '0': '0' };

/** Whether a labelled prediction was right (binary labels may be 0/1 or true/false). */
export function isCorrect(prediction: readonly number[], label: string): boolean {
  const expected = prediction.length === 1 ? (BINARY_LABELS[label.toLowerCase()] ?? label) : label;
  return predictedLabel(prediction) === expected;
}

/** Adds `from` into `into` (in place). */
export function mergeInto(into: Rollup, from: Rollup): Rollup {
  into.inferences += from.inferences;
  into.errors += from.errors;
  into.escalations += from.escalations;
  into.fallbacks += from.fallbacks;
  into.labeled += from.labeled;
  into.correct += from.correct;
  into.confidenceSum += from.confidenceSum;
  addCounts(into.confidenceBins, from.confidenceBins);
  addCounts(into.predictionBins, from.predictionBins);
  if (from.latency.totalCount > 0) into.latency.add(from.latency);
  into.heartbeats += from.heartbeats;
  for (const f of Object.values(from.features)) addFeature(into, f);
  return into;
}

/** Pools a feature summary into a rollup's (counts, moments, and bins while their edges agree). */
export function addFeature(into: Rollup, summary: FeatureSummary): void {
  const mine = into.features[summary.name];
  into.features[summary.name] = mine ? mergeSummaries([mine, summary]) : copySummary(summary);
}

function copySummary(s: FeatureSummary): FeatureSummary {
  return { ...s, bins: s.bins ? [...s.bins] : null, binEdges: s.binEdges ? [...s.binEdges] : null };
}

function addCounts(into: number[], from: readonly number[]): void {
  for (let i = 0; i < into.length && i < from.length; i++) into[i] = into[i]! + from[i]!;
}

export function cloneRollup(r: Rollup): Rollup {
  return mergeInto(emptyRollup(), r);
}

/**
 * The rollup as stored (the `rollups` table's value columns): bins as JSON arrays of counts over equal bins of
 * [0, 1] (predictions: the argmax class, or bins for one output), the latency HDR histogram in microseconds as
 * compressed base64 (hdr-histogram-js), features as a JSON object of merged summaries.
 */
export interface EncodedRollup {
  inferences: number;
  errors: number;
  escalations: number;
  fallbacks: number;
  labeled: number;
  correct: number;
  confidence_sum: number;
  confidence_bins: string;
  prediction_bins: string;
  latency: string;
  heartbeats: number;
  features: string;
}

export function encodeRollup(r: Rollup): EncodedRollup {
  return {
    inferences: r.inferences,
    errors: r.errors,
    escalations: r.escalations,
    fallbacks: r.fallbacks,
    labeled: r.labeled,
    correct: r.correct,
    confidence_sum: r.confidenceSum,
    confidence_bins: JSON.stringify(r.confidenceBins),
    prediction_bins: JSON.stringify(r.predictionBins),
    latency: r.latency.totalCount > 0 ? hdr.encodeIntoCompressedBase64(r.latency) : '',
    heartbeats: r.heartbeats,
    features: JSON.stringify(r.features),
  };
}

export function decodeRollup(row: EncodedRollup): Rollup {
  let latency = newLatencyHistogram();
  if (row.latency !== '') {
    latency = hdr.decodeFromCompressedBase64(row.latency, 'packed');
    latency.autoResize = true;
  }
  return {
    inferences: Number(row.inferences),
    errors: Number(row.errors),
    escalations: Number(row.escalations),
    fallbacks: Number(row.fallbacks),
    labeled: Number(row.labeled),
    correct: Number(row.correct),
    confidenceSum: Number(row.confidence_sum),
    confidenceBins: JSON.parse(row.confidence_bins) as number[],
    predictionBins: JSON.parse(row.prediction_bins) as number[],
    latency,
    heartbeats: Number(row.heartbeats),
    features: JSON.parse(row.features) as Record<string, FeatureSummary>,
  };
}

/** The SLIs of a merged rollup (one series or a cohort, over a window). */
export interface InferenceSlis {
  inferences: number;
  errors: number;
  successRate: number | null;
  errorRate: number | null;
  latencyMs: { p50: number; p95: number; p99: number; max: number } | null;
  meanConfidence: number | null;
  confidenceBins: number[];
  predictionBins: number[];
  escalationRate: number | null;
  edgeFallbackRate: number | null;
  accuracy: number | null;
  labeled: number;
  heartbeats: number;
}

const ms = (us: number) => us / 1000;

export function slisOf(r: Rollup): InferenceSlis {
  const n = r.inferences;
  const ratio = (x: number) => (n > 0 ? x / n : null);
  const ok = n - r.errors;
  return {
    inferences: n,
    errors: r.errors,
    successRate: ratio(ok),
    errorRate: ratio(r.errors),
    latencyMs:
      r.latency.totalCount > 0
        ? {
            p50: ms(r.latency.getValueAtPercentile(50)),
            p95: ms(r.latency.getValueAtPercentile(95)),
            p99: ms(r.latency.getValueAtPercentile(99)),
            max: ms(r.latency.maxValue),
          }
        : null,
    meanConfidence: ok > 0 ? r.confidenceSum / ok : null,
    confidenceBins: [...r.confidenceBins],
    predictionBins: [...r.predictionBins],
    escalationRate: ratio(r.escalations),
    edgeFallbackRate: ratio(r.fallbacks),
    accuracy: r.labeled > 0 ? r.correct / r.labeled : null,
    labeled: r.labeled,
    heartbeats: r.heartbeats,
  };
}

/**
 * The fraction of recorded latencies at or below `thresholdUs` (for a latency SLO: good events are the fast ones).
 * HDR histograms have no count-below query, so this bisects on the percentile (40 steps: far below the
 * histogram's own 0.1% value precision).
 */
export function fractionAtOrBelow(h: Histogram, thresholdUs: number): number {
  if (h.totalCount === 0) return 1;
  if (h.maxValue <= thresholdUs) return 1;
  if (h.getValueAtPercentile(0) > thresholdUs) return 0;
  let lo = 0;
  let hi = 100;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (h.getValueAtPercentile(mid) <= thresholdUs) lo = mid;
    else hi = mid;
  }
  return lo / 100;
}
