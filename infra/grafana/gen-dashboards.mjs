#!/usr/bin/env node
// Writes infra/grafana/dashboards/*.json: the fleet overview, rollout, FL rounds and SLO dashboards (Grafana
// schemaVersion 39 JSON, provisioned by provisioning/dashboards/edgefl.yml). Panels follow a few shapes, so they are
// generated; `node infra/grafana/gen-dashboards.mjs --check` exits 1 when a committed file is stale (a test runs it).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';

const outDir = join(dirname(fileURLToPath(import.meta.url)), 'dashboards');
/** The datasource uid provisioning/datasources/prometheus.yml gives Prometheus. */
const DS = { type: 'prometheus', uid: 'edgefl-prometheus' };

const T = '$tenant';
const M = '$model';
/** Label matchers of the tenant / model variables (multi-value, "All" = .*). */
const tm = `tenant=~"${T}", model=~"${M}"`;

function variable(name, label, query) {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query, refId: `${name}-var` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
  };
}

const TENANT = variable('tenant', 'Tenant', 'label_values(edgefl_fleet_devices, tenant)');
const MODEL = variable('model', 'Model', `label_values(edgefl_fleet_inference_total{tenant=~"${T}"}, model)`);

/** Lays panels out on Grafana's 24-column grid, left to right, wrapping rows. */
function layout(panels) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((p, i) => {
    const w = p.w ?? 12;
    const h = p.h ?? 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const rest = { ...p };
    delete rest.w;
    delete rest.h;
    const placed = { id: i + 1, ...rest, gridPos: { x, y, w, h } };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return placed;
  });
}

const targets = (queries) =>
  queries.map(([expr, legendFormat], i) => ({
    datasource: DS,
    refId: String.fromCharCode(65 + i),
    expr,
    legendFormat,
  }));

function timeseries(title, unit, queries, extra = {}) {
  return {
    type: 'timeseries',
    title,
    datasource: DS,
    targets: targets(queries),
    fieldConfig: { defaults: { unit, custom: { fillOpacity: 10, showPoints: 'never' } }, overrides: [] },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] } },
    ...extra,
  };
}

function stat(title, unit, expr, thresholds, extra = {}) {
  return {
    type: 'stat',
    title,
    datasource: DS,
    targets: targets([[expr, title]]),
    fieldConfig: {
      defaults: {
        unit,
        thresholds: {
          mode: 'absolute',
          steps: thresholds.map(([value, color]) => ({ value, color })),
        },
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
    },
    w: 6,
    h: 5,
    ...extra,
  };
}

const good = (v) => [
  [null, 'red'],
  [v, 'green'],
];
const bad = (v) => [
  [null, 'green'],
  [v, 'red'],
];

function dashboard(uid, title, description, panels, templating = [TENANT, MODEL]) {
  return {
    uid,
    title,
    description,
    tags: ['edgefl'],
    editable: false,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    timezone: 'utc',
    templating: { list: templating },
    annotations: { list: [] },
    links: [{ type: 'dashboards', tags: ['edgefl'], asDropdown: true, title: 'edgefl dashboards' }],
    panels: layout(panels),
  };
}

const quantile = (q, by) =>
  `histogram_quantile(${q}, sum by (${by}, le) (rate(edgefl_fleet_inference_latency_seconds_bucket{${tm}}[$__rate_interval])))`;

const DASHBOARDS = {
  'fleet-overview': dashboard(
    'edgefl-fleet-overview',
    'edgefl / Fleet overview',
    'Devices reporting, inference volume, errors and latency across the fleet (metrics of services/telemetry).',
    [
      stat('Devices fresh', 'short', `sum(edgefl_fleet_devices{tenant=~"${T}", state="fresh"})`, good(1)),
      stat('Devices silent', 'short', `sum(edgefl_fleet_devices{tenant=~"${T}", state="silent"})`, bad(1)),
      stat(
        'Inference error ratio (5m)',
        'percentunit',
        `sum(rate(edgefl_fleet_inference_total{${tm}, outcome="error"}[5m])) / sum(rate(edgefl_fleet_inference_total{${tm}}[5m]))`,
        bad(0.001),
      ),
      stat(
        'p99 latency (5m)',
        's',
        quantile(0.99, 'tenant').replace('sum by (tenant, le)', 'sum by (le)'),
        bad(0.1),
      ),
      timeseries('Devices by group and state', 'short', [
        [`sum by (group, state) (edgefl_fleet_devices{tenant=~"${T}"})`, '{{group}} {{state}}'],
      ]),
      timeseries('Inferences per second by model', 'reqps', [
        [
          `sum by (model, outcome) (rate(edgefl_fleet_inference_total{${tm}}[$__rate_interval]))`,
          '{{model}} {{outcome}}',
        ],
      ]),
      timeseries('Inference latency p50 / p95 / p99', 's', [
        [quantile(0.5, 'model'), 'p50 {{model}}'],
        [quantile(0.95, 'model'), 'p95 {{model}}'],
        [quantile(0.99, 'model'), 'p99 {{model}}'],
      ]),
      timeseries('Model-version mix (share of inferences)', 'percentunit', [
        [
          `sum by (model, version) (rate(edgefl_fleet_inference_total{${tm}}[$__rate_interval])) / ignoring (version) group_left () sum by (model) (rate(edgefl_fleet_inference_total{${tm}}[$__rate_interval]))`,
          '{{model}} v{{version}}',
        ],
      ]),
      timeseries('Gateway: connected devices and messages in', 'short', [
        [`sum by (tenant) (edgefl_gateway_connections{tenant=~"${T}"})`, 'connections {{tenant}}'],
        ['sum by (channel) (rate(edgefl_gateway_messages_in_total[$__rate_interval]))', 'in/s {{channel}}'],
      ]),
      timeseries('Bus: consumer lag and dead letters', 'short', [
        ['topic_group:edgefl_bus_consumer_lag:sum', 'lag {{group}} {{topic}}'],
        [
          'sum by (group, reason_code) (rate(edgefl_bus_dead_lettered_total[$__rate_interval]))',
          'dead-lettered/s {{group}} {{reason_code}}',
        ],
      ]),
    ],
  ),
  rollout: dashboard(
    'edgefl-rollout',
    'edgefl / Rollout',
    'OTA progress and the health of each model version in the fleet: what the registry rollout gates act on.',
    [
      stat(
        'OTA success (1h)',
        'percentunit',
        `sum(rate(edgefl_fleet_ota_total{${tm}, outcome="active"}[1h])) / sum(rate(edgefl_fleet_ota_total{${tm}}[1h]))`,
        good(0.99),
      ),
      stat(
        'OTA failed + rolled back (1h)',
        'short',
        `sum(increase(edgefl_fleet_ota_total{${tm}, outcome=~"failed|rolled_back"}[1h]))`,
        bad(1),
      ),
      stat(
        'Rollbacks (24h)',
        'short',
        'sum(increase(edgefl_registry_rollout_transitions_total{to_state="ROLLED_BACK"}[24h]))',
        bad(1),
      ),
      stat(
        'Versions serving',
        'short',
        `count(count by (model, version) (rate(edgefl_fleet_inference_total{${tm}}[5m]) > 0))`,
        [[null, 'blue']],
      ),
      timeseries('OTA outcomes per minute', 'short', [
        [
          `sum by (model, outcome) (rate(edgefl_fleet_ota_total{${tm}}[$__rate_interval])) * 60`,
          '{{model}} {{outcome}}',
        ],
      ]),
      timeseries('Rollout transitions', 'short', [
        [
          'sum by (to_state) (increase(edgefl_registry_rollout_transitions_total[$__rate_interval]))',
          '{{to_state}}',
        ],
      ]),
      timeseries('Inference error ratio by version (canary vs stable)', 'percentunit', [
        [
          `sum by (model, version) (rate(edgefl_fleet_inference_total{${tm}, outcome="error"}[$__rate_interval])) / sum by (model, version) (rate(edgefl_fleet_inference_total{${tm}}[$__rate_interval]))`,
          '{{model}} v{{version}}',
        ],
      ]),
      timeseries('p95 latency by version', 's', [
        [quantile(0.95, 'model, version'), '{{model}} v{{version}}'],
      ]),
      timeseries(
        'Inferences per second by version and group',
        'reqps',
        [
          [
            `sum by (model, version, group) (rate(edgefl_fleet_inference_total{${tm}}[$__rate_interval]))`,
            '{{model}} v{{version}} {{group}}',
          ],
        ],
        { w: 24 },
      ),
    ],
  ),
  'fl-rounds': dashboard(
    'edgefl-fl-rounds',
    'edgefl / FL rounds',
    'Federated rounds of the aggregator: outcomes, updates accepted and rejected, aggregation time, privacy spent, secure aggregation.',
    [
      stat(
        'Rounds succeeded (24h)',
        'short',
        'sum(increase(edgefl_aggregator_rounds_total{outcome="succeeded"}[24h]))',
        [[null, 'blue']],
      ),
      stat(
        'Rounds failed (24h)',
        'short',
        'sum(increase(edgefl_aggregator_rounds_total{outcome="failed"}[24h]))',
        bad(1),
      ),
      stat(
        'Update rejection ratio (1h)',
        'percentunit',
        'sum(rate(edgefl_aggregator_updates_total{verdict="rejected"}[1h])) / sum(rate(edgefl_aggregator_updates_total[1h]))',
        bad(0.05),
      ),
      stat('ε spent (total)', 'short', 'sum(edgefl_aggregator_epsilon_spent_total)', [[null, 'purple']]),
      timeseries('Rounds by outcome', 'short', [
        ['sum by (outcome) (increase(edgefl_aggregator_rounds_total[$__rate_interval]))', '{{outcome}}'],
      ]),
      timeseries('Updates by verdict and reason', 'short', [
        [
          'sum by (verdict, reason) (rate(edgefl_aggregator_updates_total[$__rate_interval]))',
          '{{verdict}} {{reason}}',
        ],
      ]),
      timeseries('Aggregation time p50 / p95 (close → stored aggregate)', 's', [
        [
          'histogram_quantile(0.5, sum by (le) (rate(edgefl_aggregator_aggregation_seconds_bucket[$__rate_interval])))',
          'p50',
        ],
        [
          'histogram_quantile(0.95, sum by (le) (rate(edgefl_aggregator_aggregation_seconds_bucket[$__rate_interval])))',
          'p95',
        ],
      ]),
      timeseries('Privacy budget spent (ε, cumulative)', 'short', [
        ['sum(edgefl_aggregator_epsilon_spent_total)', 'ε'],
      ]),
      timeseries('Secure aggregation messages by phase', 'short', [
        [
          'sum by (phase, verdict) (rate(edgefl_aggregator_secagg_messages_total[$__rate_interval]))',
          '{{phase}} {{verdict}}',
        ],
      ]),
      timeseries('Secure aggregation dropouts by phase', 'short', [
        ['sum by (phase) (increase(edgefl_aggregator_secagg_dropouts_total[$__rate_interval]))', '{{phase}}'],
      ]),
    ],
    [],
  ),
  slo: dashboard(
    'edgefl-slo',
    'edgefl / SLOs',
    'Error budgets and burn rates of the fleet SLOs (infra/prometheus/rules/slo.rules.yml; SRE workbook ch. 5).',
    [
      stat(
        'Error budget left: availability',
        'percentunit',
        `min(edgefl_slo:error_budget:remaining{slo="inference-availability", tenant=~"${T}"})`,
        good(0.25),
      ),
      stat(
        'Error budget left: p99 latency',
        'percentunit',
        `min(edgefl_slo:error_budget:remaining{slo="inference-latency", tenant=~"${T}"})`,
        good(0.25),
      ),
      stat(
        'Error budget left: freshness',
        'percentunit',
        `min(edgefl_slo:error_budget:remaining{slo="telemetry-freshness", tenant=~"${T}"})`,
        good(0.25),
      ),
      stat(
        'Error budget left: OTA success',
        'percentunit',
        `min(edgefl_slo:error_budget:remaining{slo="ota-success", tenant=~"${T}"})`,
        good(0.25),
      ),
      timeseries(
        'Burn rate over 1 h (page at 14.4)',
        'short',
        [
          [
            `edgefl_slo:sli_error:ratio_rate1h{tenant=~"${T}"} / on (slo) group_left () (1 - edgefl_slo:objective:ratio)`,
            '{{slo}} {{tenant}} {{model}}',
          ],
        ],
        { fieldConfig: thresholdLine(14.4) },
      ),
      timeseries(
        'Burn rate over 6 h (page at 6)',
        'short',
        [
          [
            `edgefl_slo:sli_error:ratio_rate6h{tenant=~"${T}"} / on (slo) group_left () (1 - edgefl_slo:objective:ratio)`,
            '{{slo}} {{tenant}} {{model}}',
          ],
        ],
        { fieldConfig: thresholdLine(6) },
      ),
      timeseries('Error ratio over 5 min by SLO', 'percentunit', [
        [`edgefl_slo:sli_error:ratio_rate5m{tenant=~"${T}"}`, '{{slo}} {{tenant}} {{model}}'],
      ]),
      timeseries('Error budget left (30 d)', 'percentunit', [
        [`edgefl_slo:error_budget:remaining{tenant=~"${T}"}`, '{{slo}} {{tenant}} {{model}}'],
      ]),
      {
        type: 'table',
        title: 'Burn-rate alerts firing',
        datasource: DS,
        targets: targets([['ALERTS{alertname=~"EdgeflSlo.*", alertstate="firing"}', '{{alertname}}']]).map(
          (t) => ({
            ...t,
            instant: true,
            format: 'table',
          }),
        ),
        fieldConfig: { defaults: {}, overrides: [] },
        options: { showHeader: true },
        w: 24,
      },
    ],
    [TENANT],
  ),
};

function thresholdLine(value) {
  return {
    defaults: {
      unit: 'short',
      custom: { fillOpacity: 10, showPoints: 'never', thresholdsStyle: { mode: 'line' } },
      thresholds: {
        mode: 'absolute',
        steps: [
          { value: null, color: 'green' },
          { value, color: 'red' },
        ],
      },
    },
    overrides: [],
  };
}

const check = process.argv.includes('--check');
let stale = false;
mkdirSync(outDir, { recursive: true });
for (const [name, board] of Object.entries(DASHBOARDS)) {
  const file = join(outDir, `${name}.json`);
  // formatted as `npm run format` would (the repository's Prettier config), so format:check agrees
  const text = await prettier.format(JSON.stringify(board), {
    ...(await prettier.resolveConfig(file)),
    parser: 'json',
  });
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write(`${file} is stale: run node infra/grafana/gen-dashboards.mjs\n`);
      stale = true;
    }
  } else {
    writeFileSync(file, text);
  }
}
if (stale) process.exit(1);
