// The report's charts as Chart.js configurations: plain JSON (no callbacks), so the page embeds them as data and
// one small boot script hands each to Chart.js. Units are chosen here (%, kB, ms) and named on the axis titles.
import type { ChartConfiguration, ChartDataset } from 'chart.js';
import type { DemoSummary, Histogram } from '../demo/summary.js';
import { byteUnit, versionName } from './format.js';

export interface ChartSpec {
  /** The canvas is `chart-<id>`. */
  readonly id: string;
  /** What the chart shows, in words (the canvas's accessible name). */
  readonly description: string;
  readonly config: ChartConfiguration;
}

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
export const COLOURS = {
  blue: '#0072B2',
  orange: '#E69F00',
  green: '#009E73',
  vermillion: '#D55E00',
  sky: '#56B4E9',
  purple: '#CC79A7',
  grey: '#6b7280',
} as const;
const STAGE_COLOURS = ['#c6dbef', '#9ecae1', '#6baed6', '#3182bd', '#08519c', '#08306b'];

const round2 = (value: number) => Math.round(value * 100) / 100;
const axis = (text: string, extra: Record<string, unknown> = {}) => ({
  title: { display: true, text },
  ...extra,
});

function line(
  labels: string[],
  datasets: ChartDataset<'line', (number | null)[]>[],
  x: string,
  y: string,
  yExtra: Record<string, unknown> = {},
): ChartConfiguration {
  return {
    type: 'line',
    data: { labels, datasets },
    // a line, not a box, in the legend: the dashed reference lines look like themselves
    options: {
      plugins: { legend: { labels: { usePointStyle: true, boxHeight: 9 } } },
      scales: { x: axis(x), y: axis(y, yExtra) },
    },
  };
}

function bar(
  labels: (string | string[])[], // an array is a label of several lines
  datasets: ChartDataset<'bar', (number | null)[]>[],
  x: string,
  y: string,
  options: { stacked?: boolean; horizontal?: boolean; legend?: boolean } = {},
): ChartConfiguration {
  const stacked = options.stacked ? { stacked: true } : {};
  const [indexTitle, valueTitle] = [x, y];
  return {
    type: 'bar',
    data: { labels, datasets },
    options: {
      ...(options.horizontal ? { indexAxis: 'y' as const } : {}),
      plugins: { legend: { display: options.legend ?? true } },
      scales: options.horizontal
        ? { y: axis(indexTitle, stacked), x: axis(valueTitle, { ...stacked, beginAtZero: true }) }
        : { x: axis(indexTitle, stacked), y: axis(valueTitle, { ...stacked, beginAtZero: true }) },
    },
  };
}

const federated = (label: string, data: (number | null)[]): ChartDataset<'line', (number | null)[]> => ({
  label,
  data,
  borderColor: COLOURS.blue,
  backgroundColor: COLOURS.blue,
  pointRadius: 3,
  pointStyle: 'circle',
  tension: 0.2,
});
const reference = (
  label: string,
  value: number,
  n: number,
  colour: string,
): ChartDataset<'line', number[]> => ({
  label,
  data: new Array<number>(n).fill(value),
  borderColor: colour,
  backgroundColor: colour,
  borderDash: [6, 4],
  pointRadius: 0,
  pointStyle: 'line',
});

/**
 * The centralized baseline's line: per round when every round carries it (trained as many epochs as the fleet by
 * then), else the final baseline as a flat reference.
 */
function baselineLine(
  s: DemoSummary,
  pick: (b: { accuracy: number; rocAuc: number | null }) => number | null,
  final: number,
): ChartDataset<'line', (number | null)[]> {
  if (s.rounds.length > 0 && s.rounds.every((r) => r.baseline !== undefined))
    return {
      ...reference('centralized baseline', 0, 0, COLOURS.orange),
      data: s.rounds.map((r) => pick(r.baseline!)),
      pointRadius: 2,
    };
  return reference('centralized baseline', final, s.rounds.length, COLOURS.orange);
}

export function accuracyChart(s: DemoSummary): ChartSpec {
  const labels = s.rounds.map((r) => String(r.round));
  return {
    id: 'accuracy',
    description: 'Test accuracy of the federated model per round against the centralized baseline',
    config: line(
      labels,
      [
        federated(
          'federated model',
          s.rounds.map((r) => round2(r.accuracy * 100)),
        ),
        baselineLine(s, (b) => round2(b.accuracy * 100), round2(s.baseline.accuracy * 100)),
      ],
      'round',
      'test accuracy (%)',
      { suggestedMax: 100 },
    ),
  };
}

/** Null when there is nothing to draw: not a binary task, or no round measured ROC AUC. */
export function rocAucChart(s: DemoSummary): ChartSpec | null {
  if (s.settings.task !== 'binary' || s.rounds.every((r) => r.rocAuc === null)) return null;
  const labels = s.rounds.map((r) => String(r.round));
  const datasets: ChartDataset<'line', (number | null)[]>[] = [
    federated(
      'federated model',
      s.rounds.map((r) => (r.rocAuc === null ? null : Math.round(r.rocAuc * 1000) / 1000)),
    ),
  ];
  if (s.baseline.rocAuc !== null) {
    datasets.push(
      baselineLine(
        s,
        (b) => (b.rocAuc === null ? null : Math.round(b.rocAuc * 1000) / 1000),
        s.baseline.rocAuc,
      ),
    );
  }
  return {
    id: 'roc-auc',
    description: 'ROC AUC of the federated model per round against the centralized baseline',
    config: line(labels, datasets, 'round', 'ROC AUC', { suggestedMax: 1 }),
  };
}

/** Null when differential privacy was off (no round spent any ε). */
export function epsilonChart(s: DemoSummary): ChartSpec | null {
  if (s.rounds.every((r) => r.epsilonSpent === null)) return null;
  const labels = s.rounds.map((r) => String(r.round));
  const datasets: ChartDataset<'line', (number | null)[]>[] = [
    {
      label: 'ε spent (cumulative)',
      data: s.rounds.map((r) => (r.epsilonSpent === null ? null : round2(r.epsilonSpent))),
      borderColor: COLOURS.purple,
      backgroundColor: COLOURS.purple,
      pointRadius: 3,
    },
  ];
  if (s.settings.dpEpsilon !== null) {
    datasets.push(reference('ε budget', s.settings.dpEpsilon, labels.length, COLOURS.vermillion));
  }
  return {
    id: 'epsilon',
    description: 'Cumulative privacy budget ε spent per round',
    config: line(labels, datasets, 'round', 'ε', { beginAtZero: true }),
  };
}

export function updatesChart(s: DemoSummary): ChartSpec | null {
  if (s.rounds.length === 0) return null;
  return {
    id: 'updates',
    description: 'Updates aggregated and rejected per round',
    config: bar(
      s.rounds.map((r) => String(r.round)),
      [
        { label: 'aggregated', data: s.rounds.map((r) => r.participants), backgroundColor: COLOURS.green },
        { label: 'rejected', data: s.rounds.map((r) => r.rejected), backgroundColor: COLOURS.vermillion },
      ],
      'round',
      'updates',
      { stacked: true },
    ),
  };
}

/** Devices active on each release at each of its stages; null without releases. */
export function rolloutChart(s: DemoSummary): ChartSpec | null {
  if (s.releases.length === 0) return null;
  const stageNumbers = [...new Set(s.releases.flatMap((r) => r.stages.map((st) => st.stage)))].sort(
    (a, b) => a - b,
  );
  const datasets = stageNumbers.map((n, i): ChartDataset<'bar', (number | null)[]> => {
    const percents = new Set(
      s.releases.flatMap((r) => r.stages.filter((st) => st.stage === n).map((st) => st.percent)),
    );
    const label = percents.size === 1 ? `stage ${n} (${[...percents][0]}%)` : `stage ${n}`;
    return {
      label,
      data: s.releases.map((r) => r.stages.find((st) => st.stage === n)?.devicesActive ?? null),
      backgroundColor: STAGE_COLOURS[Math.min(i, STAGE_COLOURS.length - 1)]!,
    };
  });
  return {
    id: 'rollout',
    description: 'Devices active on each release at each rollout stage',
    config: bar(
      s.releases.map((r) => [versionName(r.version), r.outcome]),
      datasets,
      'release',
      'devices on the release',
    ),
  };
}

export function versionMixChart(s: DemoSummary): ChartSpec | null {
  const entries = Object.entries(s.fleetVersionMix).sort(([a], [b]) =>
    b.localeCompare(a, 'en', { numeric: true }),
  );
  if (entries.length === 0) return null;
  return {
    id: 'version-mix',
    description: 'Number of devices on each model version at the end of the run',
    config: bar(
      entries.map(([version]) => versionName(version)),
      [{ label: 'devices', data: entries.map(([, n]) => n), backgroundColor: COLOURS.blue }],
      'model version',
      'devices',
      { horizontal: true, legend: false },
    ),
  };
}

/** What the installs downloaded (delta + full) against the same installs as full downloads; null without any. */
export function otaBytesChart(s: DemoSummary): ChartSpec | null {
  const { ota } = s;
  if (ota.deltaDownloads + ota.fullDownloads === 0) return null;
  const { unit, size } = byteUnit(Math.max(ota.deltaBytes + ota.fullBytes, ota.fullEquivalentBytes));
  const scaled = (value: number) => round2(value / size);
  return {
    id: 'ota-bytes',
    description: 'Bytes downloaded as deltas and full models against the same installs as full downloads',
    config: bar(
      ['downloaded', 'as full models'],
      [
        { label: 'deltas', data: [scaled(ota.deltaBytes), null], backgroundColor: COLOURS.green },
        { label: 'full models', data: [scaled(ota.fullBytes), null], backgroundColor: COLOURS.sky },
        {
          label: 'the same installs as full downloads',
          data: [null, scaled(ota.fullEquivalentBytes)],
          backgroundColor: COLOURS.grey,
        },
      ],
      '',
      `bytes (${unit})`,
      { stacked: true, horizontal: true },
    ),
  };
}

export function roundBytesChart(s: DemoSummary): ChartSpec | null {
  if (s.rounds.length === 0) return null;
  const max = Math.max(...s.rounds.flatMap((r) => [r.bytesPerDevice.up, r.bytesPerDevice.down]));
  const { unit, size } = byteUnit(max);
  return {
    id: 'round-bytes',
    description: 'Bytes each device sent and received per round',
    config: bar(
      s.rounds.map((r) => String(r.round)),
      [
        {
          label: 'up (update)',
          data: s.rounds.map((r) => round2(r.bytesPerDevice.up / size)),
          backgroundColor: COLOURS.orange,
        },
        {
          label: 'down (model)',
          data: s.rounds.map((r) => round2(r.bytesPerDevice.down / size)),
          backgroundColor: COLOURS.blue,
        },
      ],
      'round',
      `bytes per device (${unit})`,
    ),
  };
}

/** Bucket names: counts[i] is [bounds[i-1], bounds[i]); a count past the last bound is the overflow bucket. */
export function bucketLabels(h: Histogram): string[] {
  return h.counts.map((_, i) => {
    if (i === 0) return `< ${h.boundsMs[0] ?? '∞'}`;
    if (i === h.boundsMs.length) return `≥ ${h.boundsMs[i - 1]}`;
    return `${h.boundsMs[i - 1]}–${h.boundsMs[i]}`;
  });
}

export function latencyChart(tier: 'edge' | 'cloud', h: Histogram): ChartSpec | null {
  if (h.counts.every((c) => c === 0)) return null;
  return {
    id: `latency-${tier}`,
    description: `Histogram of ${tier === 'edge' ? 'on-device' : 'cloud-tier'} inference latency`,
    config: bar(
      bucketLabels(h),
      [
        {
          label: tier === 'edge' ? 'on-device inferences' : 'escalations answered by the cloud',
          data: [...h.counts],
          backgroundColor: tier === 'edge' ? COLOURS.green : COLOURS.purple,
        },
      ],
      'latency (ms)',
      'requests',
      { legend: false },
    ),
  };
}
