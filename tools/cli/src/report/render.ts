// renderReport: one self-contained HTML page from a demo summary. Every string that comes from the summary goes
// through escape-html (text and attributes) or scriptSafeJson (the chart data block); nothing else is interpolated.
import escapeHtml from 'escape-html';
import type { DemoSummary, Histogram, ReleaseFigures } from '../demo/summary.js';
import {
  accuracyChart,
  epsilonChart,
  latencyChart,
  otaBytesChart,
  rocAucChart,
  rolloutChart,
  roundBytesChart,
  updatesChart,
  versionMixChart,
  type ChartSpec,
} from './charts.js';
import {
  bytes,
  duration,
  gapInPoints,
  integer,
  milliseconds,
  percent,
  plural,
  probability,
  timestamp,
  versionName,
} from './format.js';
import { BOOT_SCRIPT, chartJsSource, cspHash, scriptSafeJson, STYLE } from './page.js';

const esc = (value: string | number): string => escapeHtml(String(value));

/** The ids of the charts a summary's report draws (each one a `<canvas id="chart-<id>">`). */
export function reportCharts(s: DemoSummary): ChartSpec[] {
  return [
    s.rounds.length > 0 ? accuracyChart(s) : null,
    rocAucChart(s),
    epsilonChart(s),
    updatesChart(s),
    rolloutChart(s),
    versionMixChart(s),
    otaBytesChart(s),
    roundBytesChart(s),
    latencyChart('edge', s.latency.edge),
    latencyChart('cloud', s.latency.cloud),
  ].filter((c): c is ChartSpec => c !== null);
}

function canvas(spec: ChartSpec | null | undefined, empty: string, short = false): string {
  if (!spec) return `<p class="empty">${esc(empty)}</p>`;
  return `<div class="chart${short ? ' short' : ''}"><canvas id="chart-${esc(spec.id)}" role="img" aria-label="${esc(spec.description)}">${esc(spec.description)}</canvas></div>`;
}

function table(head: string[], rows: string[][], numeric: ReadonlySet<number> = new Set()): string {
  const cell = (tag: 'th' | 'td', i: number, html: string) =>
    `<${tag}${numeric.has(i) ? ' class="num"' : ''}>${html}</${tag}>`;
  return `<table><thead><tr>${head.map((h, i) => cell('th', i, esc(h))).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => cell('td', i, c)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const ruleName = (robust: string | null) => (robust === null ? 'FedAvg (no robust rule)' : robust);
const attackerCount = (s: DemoSummary) => Math.round(s.settings.attackers * s.settings.devices);
const lastRound = (s: DemoSummary) => s.rounds.at(-1);

function headline(s: DemoSummary): string {
  const set = s.settings;
  const sentences: string[] = [];
  const data = set.label === null ? set.dataset : `${set.dataset} (label column ${set.label})`;
  const defence = [
    `aggregated with ${ruleName(set.robust)}`,
    set.secureAggregation ? 'under secure aggregation' : null,
    set.dpEpsilon !== null ? `with differential privacy (ε budget ${set.dpEpsilon})` : null,
  ]
    .filter(Boolean)
    .join(' ');
  sentences.push(
    `${plural(set.devices, 'simulated device')} trained a ${set.task} classifier on ${data} for ${plural(s.rounds.length, 'round')}, ${defence}.`,
  );
  sentences.push(
    set.attackers > 0
      ? `${percent(set.attackers, 0)} of the devices (${attackerCount(s)}) were attackers (${set.attack ?? 'unnamed attack'}).`
      : 'No device attacked.',
  );
  const last = lastRound(s);
  sentences.push(
    last
      ? `The final model reaches ${percent(last.accuracy)} test accuracy, ${gapInPoints(last.accuracy, s.baseline.accuracy)} centralized training on the same data (${percent(s.baseline.accuracy)}).`
      : `No round finished, so there is no federated model to compare with centralized training (${percent(s.baseline.accuracy)}).`,
  );
  if (last?.rocAuc != null) {
    const against = s.baseline.rocAuc === null ? '' : ` (centralized: ${s.baseline.rocAuc.toFixed(3)})`;
    sentences.push(`Its ROC AUC is ${last.rocAuc.toFixed(3)}${against}.`);
  }
  const rejected = s.rejectedUpdates.length;
  if (rejected > 0) sentences.push(`The aggregator rejected ${plural(rejected, 'update')}.`);
  if (s.releases.length > 0) {
    const completed = s.releases.filter((r) => r.outcome === 'completed').length;
    sentences.push(`${completed} of ${plural(s.releases.length, 'release')} reached the whole fleet.`);
  }
  const { ota } = s;
  if (ota.deltaDownloads > 0 && ota.fullEquivalentBytes > 0) {
    const downloaded = ota.deltaBytes + ota.fullBytes;
    sentences.push(
      `Deltas cut download bytes by ${percent(1 - downloaded / ota.fullEquivalentBytes, 0)} (${bytes(downloaded)} instead of ${bytes(ota.fullEquivalentBytes)}).`,
    );
  }
  return sentences.map(esc).join(' ');
}

function tiles(s: DemoSummary): string {
  const last = lastRound(s);
  const spent = last?.epsilonSpent ?? null;
  const downloaded = s.ota.deltaBytes + s.ota.fullBytes;
  const items: [string, string][] = [
    ['final accuracy', last ? percent(last.accuracy) : 'no round'],
    ['centralized baseline', percent(s.baseline.accuracy)],
  ];
  if (last?.rocAuc != null) items.push(['final ROC AUC', last.rocAuc.toFixed(3)]);
  items.push(
    ['ε spent', spent === null ? 'DP off' : `${spent.toFixed(2)} of ${s.settings.dpEpsilon ?? '∞'}`],
    ['rejected updates', integer(s.rejectedUpdates.length)],
    [
      'download saving',
      s.ota.fullEquivalentBytes > 0 ? percent(1 - downloaded / s.ota.fullEquivalentBytes, 0) : 'no downloads',
    ],
    ['edge p50 / p99', `${milliseconds(s.latency.edge.p50)} / ${milliseconds(s.latency.edge.p99)}`],
    ['wall time', duration(s.wallSeconds)],
  );
  return `<dl class="tiles">${items.map(([k, v]) => `<div class="tile"><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`;
}

function settingsSection(s: DemoSummary): string {
  const set = s.settings;
  const rows: [string, string][] = [
    ['devices', integer(set.devices)],
    ['rounds (asked / finished)', `${set.rounds} / ${s.rounds.length}`],
    ['data set', set.dataset],
    ['label column', set.label ?? 'the data set’s own'],
    ['task', set.task],
    ['non-IID split (Dirichlet α)', String(set.dirichletAlpha)],
    [
      'attackers',
      set.attackers > 0 ? `${percent(set.attackers, 0)} (${plural(attackerCount(s), 'device')})` : 'none',
    ],
    ['attack', set.attack ?? 'none'],
    ['aggregation rule', ruleName(set.robust)],
    ...(set.defence
      ? ([
          [
            'rule parameters',
            Object.entries(set.defence.params)
              .map(([k, v]) => `${k} = ${v}`)
              .join(', ') || 'none',
          ],
          ['norm bound (reject above)', set.defence.maxNorm === null ? 'none' : String(set.defence.maxNorm)],
          ['outlier flag (robust z of the norm)', `above ${set.defence.outlierZ}`],
          ...(set.defence.bucketSize !== null
            ? ([['secure-aggregation buckets', `${set.defence.bucketSize} devices each`]] as [
                string,
                string,
              ][])
            : []),
        ] as [string, string][])
      : []),
    ...(set.attackerIds && set.attackerIds.length > 0
      ? ([['attacking devices', set.attackerIds.join(', ')]] as [string, string][])
      : []),
    ['secure aggregation', set.secureAggregation ? 'on' : 'off'],
    [
      'differential privacy',
      set.dpEpsilon === null
        ? 'off'
        : `ε = ${set.dpEpsilon}, δ = ${set.dpDelta === null ? 'not given' : probability(set.dpDelta)}`,
    ],
    ['seed', String(set.seed)],
    ['started', timestamp(s.startedAt)],
    ['finished', `${timestamp(s.finishedAt)} (${duration(s.wallSeconds)})`],
  ];
  return `<section id="settings"><h2>What ran: data, attack and defence</h2><table class="settings"><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('')}</tbody></table></section>`;
}

function roundsTable(s: DemoSummary): string {
  const binary = s.rounds.some((r) => r.rocAuc !== null);
  const dp = s.rounds.some((r) => r.epsilonSpent !== null);
  const head = ['round', 'round id', 'aggregated', 'rejected', 'accuracy'];
  if (binary) head.push('ROC AUC');
  if (dp) head.push('ε spent');
  head.push('version', 'up / device', 'down / device', 'wall');
  const numeric = new Set(head.map((h, i) => (['round id', 'version'].includes(h) ? -1 : i)));
  const rows = s.rounds.map((r) => {
    const cells = [r.round, r.roundId, integer(r.participants), integer(r.rejected), percent(r.accuracy)].map(
      esc,
    );
    if (binary) cells.push(esc(r.rocAuc === null ? '—' : r.rocAuc.toFixed(3)));
    if (dp) cells.push(esc(r.epsilonSpent === null ? '—' : r.epsilonSpent.toFixed(2)));
    cells.push(
      ...[
        r.version === null ? 'none' : versionName(r.version),
        bytes(r.bytesPerDevice.up),
        bytes(r.bytesPerDevice.down),
        duration(r.wallSeconds),
      ].map(esc),
    );
    return cells;
  });
  return `<details><summary>every round in numbers</summary><div class="scroll">${table(head, rows, numeric)}</div></details>`;
}

function rejectedSection(s: DemoSummary, charts: Map<string, ChartSpec>): string {
  const rejected = s.rejectedUpdates;
  const parts = [
    `<section id="rejected" class="wide"><h2>Updates per round and rejected updates</h2>`,
    charts.has('updates') ? canvas(charts.get('updates'), '') : '',
  ];
  if (rejected.length === 0) {
    parts.push(
      `<p class="empty">${esc('No update was rejected: the aggregator accepted every update it received.')}</p>`,
    );
  } else {
    const byReason = new Map<string, number>();
    for (const r of rejected) byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1);
    const reasons = [...byReason].sort((a, b) => b[1] - a[1]);
    parts.push(
      `<p>${esc(`${plural(rejected.length, 'update')} rejected, for ${plural(reasons.length, 'reason')}:`)}</p>`,
      table(
        ['reason', 'updates'],
        reasons.map(([reason, n]) => [`<span class="reason">${esc(reason)}</span>`, esc(integer(n))]),
        new Set([1]),
      ),
      `<details><summary>${esc(`all ${plural(rejected.length, 'rejected update')}`)}</summary><div class="scroll">${table(
        ['round', 'device', 'attacker', 'reason', 'detail'],
        rejected.map((r) => [
          esc(r.round),
          esc(r.deviceId),
          esc(r.attacker === undefined ? '—' : r.attacker ? 'yes' : 'no'),
          esc(r.reason),
          esc(r.detail ?? ''),
        ]),
      )}</div></details>`,
    );
  }
  parts.push('</section>');
  return parts.join('');
}

function releaseRow(r: ReleaseFigures): string[] {
  const stages =
    r.stages.length === 0
      ? 'no stage entered'
      : r.stages
          .map((st) => `stage ${st.stage} (${st.percent}%): ${plural(st.devicesActive, 'device')} active`)
          .join(' → ');
  const outcomeClass = `outcome-${r.outcome.replace(/[^a-z-]/g, '')}`;
  return [esc(versionName(r.version)), `<span class="${outcomeClass}">${esc(r.outcome)}</span>`, esc(stages)];
}

function rolloutSection(s: DemoSummary, charts: Map<string, ChartSpec>): string {
  const noReleases = 'No release was rolled out: no round produced a new version.';
  const mix = Object.entries(s.fleetVersionMix);
  const mixText =
    mix.length === 0
      ? 'No device reported a model version at the end of the run.'
      : `At the end: ${mix
          .sort(([a], [b]) => b.localeCompare(a, 'en', { numeric: true }))
          .map(([v, n]) => `${plural(n, 'device')} on ${versionName(v)}`)
          .join(', ')}.`;
  return [
    `<section id="rollout" class="wide"><h2>Staged rollouts</h2>`,
    `<p>${esc('Each round’s result became a signed version, rolled out in stages behind the health gates; bars show how many devices ran the release when each stage was entered.')}</p>`,
    canvas(charts.get('rollout'), noReleases),
    s.releases.length > 0
      ? `<details><summary>${esc(`every release (${s.releases.length})`)}</summary><div class="scroll">${table(
          ['version', 'outcome', 'stages'],
          s.releases.map(releaseRow),
        )}</div></details>`
      : '',
    `<h3>Fleet version mix</h3>${mix.length > 0 ? `<p>${esc(mixText)}</p>` : ''}${canvas(charts.get('version-mix'), mixText, true)}`,
    '</section>',
  ].join('');
}

function otaSection(s: DemoSummary, charts: Map<string, ChartSpec>): string {
  const { ota } = s;
  const downloads = ota.deltaDownloads + ota.fullDownloads;
  const text =
    downloads === 0
      ? null
      : `${plural(downloads, 'install')}: ${integer(ota.deltaDownloads)} as deltas (${bytes(ota.deltaBytes)}), ${integer(ota.fullDownloads)} as full models (${bytes(ota.fullBytes)}); as full downloads they would have cost ${bytes(ota.fullEquivalentBytes)}.`;
  return [
    `<section id="ota" class="wide"><h2>Bytes on the wire: delta vs full</h2>`,
    text ? `<p>${esc(text)}</p>` : '',
    `<div class="pair"><div>${canvas(charts.get('ota-bytes'), 'No device downloaded a model: no delta or full download to compare.')}</div>`,
    `<div>${canvas(charts.get('round-bytes'), 'No round finished: no bytes per device to show.')}</div></div>`,
    '</section>',
  ].join('');
}

function latencyPanel(tier: 'edge' | 'cloud', h: Histogram, charts: Map<string, ChartSpec>): string {
  const total = h.counts.reduce((a, b) => a + b, 0);
  const title = tier === 'edge' ? 'On the device (edge)' : 'Escalated to the cloud tier';
  const empty =
    tier === 'edge'
      ? 'No inference ran on a device during the run.'
      : 'No input was escalated to the cloud tier: every device answered on its own.';
  const stats =
    total > 0 ? `${plural(total, 'request')}, p50 ${milliseconds(h.p50)}, p99 ${milliseconds(h.p99)}` : '';
  return `<div><h3>${esc(title)}</h3>${stats ? `<p>${esc(stats)}</p>` : ''}${canvas(charts.get(`latency-${tier}`), empty)}</div>`;
}

/** The whole report: one HTML file with everything it needs inlined (no network to open it). */
export function renderReport(summary: DemoSummary): string {
  const specs = reportCharts(summary);
  const charts = new Map(specs.map((c) => [c.id, c]));
  const s = summary;
  const set = s.settings;
  const chartLib = chartJsSource();
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(chartLib)} ${cspHash(BOOT_SCRIPT)}`,
    `style-src ${cspHash(STYLE)}`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  const rocAucEmpty =
    set.task === 'binary'
      ? 'No round measured ROC AUC.'
      : `No ROC AUC chart: the task is ${set.task}, and ROC AUC is reported for binary tasks only.`;
  const epsilonEmpty =
    'Differential privacy was off (no --dp-epsilon): devices added no noise and spent no privacy budget.';
  const last = lastRound(s);
  const accuracyText = last
    ? `Test accuracy on the held-out split the devices never trained on, against centralized training on the same training split (${percent(s.baseline.accuracy)}).`
    : '';

  const body = [
    `<header><h1>edgefl demo report</h1><p class="meta">${esc(
      `${set.dataset} · ${plural(set.devices, 'device')} · ${plural(s.rounds.length, 'round')} · ${timestamp(s.startedAt)}`,
    )}</p><p class="headline">${headline(s)}</p>${tiles(s)}</header>`,
    '<div class="grid">',
    settingsSection(s),
    `<section id="accuracy"><h2>Accuracy per round</h2>${accuracyText ? `<p>${esc(accuracyText)}</p>` : ''}${canvas(
      charts.get('accuracy'),
      'No round finished: there is no accuracy to chart.',
    )}${s.rounds.length > 0 ? roundsTable(s) : ''}</section>`,
    `<section id="roc-auc"><h2>ROC AUC per round</h2>${canvas(charts.get('roc-auc'), rocAucEmpty)}</section>`,
    `<section id="privacy"><h2>Privacy budget spent</h2>${
      charts.has('epsilon')
        ? `<p>${esc(`Cumulative (ε, δ = ${set.dpDelta === null ? 'n/a' : probability(set.dpDelta)}) from the accountant after each round, against the budget.`)}</p>`
        : ''
    }${canvas(charts.get('epsilon'), epsilonEmpty)}</section>`,
    rejectedSection(s, charts),
    rolloutSection(s, charts),
    otaSection(s, charts),
    `<section id="latency" class="wide"><h2>Inference latency</h2><div class="pair">${latencyPanel('edge', s.latency.edge, charts)}${latencyPanel('cloud', s.latency.cloud, charts)}</div></section>`,
    '</div>',
    `<footer>${esc(`Made by \`edgefl report\` from an ${s.format} summary. Charts by Chart.js (MIT licence), inlined.`)}</footer>`,
  ].join('\n');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`edgefl demo report: ${set.dataset}, ${s.rounds.length} rounds`)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
<script type="application/json" id="edgefl-report-charts">${scriptSafeJson(specs.map(({ id, config }) => ({ id, config })))}</script>
<script>${chartLib}</script>
<script>${BOOT_SCRIPT}</script>
</body>
</html>
`;
}
