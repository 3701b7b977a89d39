// Which Prometheus metric names exist, for the tests of infra/prometheus and infra/grafana: the fleet metrics the
// telemetry service exports (issue 16's contract), every name a service or lib registers with prom-client (found by
// grep over libs/*/src and services/*/src), and the names recording rules define. Test support only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The fleet metrics of services/telemetry, with their labels (never a device id). */
export const FLEET_METRICS = {
  edgefl_fleet_inference_total: ['tenant', 'model', 'version', 'group', 'outcome'],
  edgefl_fleet_inference_latency_seconds: ['tenant', 'model', 'version', 'group', 'le'],
  edgefl_fleet_devices: ['tenant', 'group', 'state'],
  edgefl_fleet_ota_total: ['tenant', 'model', 'outcome'],
} as const;

const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'];

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry === 'generated') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.spec.ts')) out.push(path);
  }
  return out;
}

/** Names registered in the code: `name: 'edgefl_…'` in a prom-client metric's options. */
export function exportedMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const top of ['libs', 'services']) {
    for (const project of readdirSync(join(REPO_ROOT, top))) {
      const src = join(REPO_ROOT, top, project, 'src');
      try {
        statSync(src);
      } catch {
        continue;
      }
      for (const file of sourceFiles(src)) {
        for (const m of readFileSync(file, 'utf8').matchAll(/\bname:\s*'(edgefl_[a-z0-9_]+)'/g))
          names.add(m[1]!);
      }
    }
  }
  return names;
}

/** Every name a query may use: fleet and exported metrics (with histogram series suffixes) and `recorded` ones. */
export function knownMetricNames(recorded: Iterable<string> = []): Set<string> {
  const known = new Set<string>(recorded);
  for (const base of [...Object.keys(FLEET_METRICS), ...exportedMetricNames()]) {
    known.add(base);
    for (const suffix of HISTOGRAM_SUFFIXES) known.add(base + suffix);
  }
  return known;
}

/**
 * The metric names a PromQL expression selects: identifiers outside strings, label matchers, grouping clauses and
 * range brackets that start with `edgefl` (every metric and recording rule of ours does) or contain a colon (a
 * recording rule's level:metric:operations name).
 */
export function metricNamesIn(promql: string): Set<string> {
  const stripped = promql
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^{}]*\}/g, '') // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\[[^\]]*\]/g, '') // ranges and subqueries
    .replace(/\$[a-zA-Z_][a-zA-Z0-9_]*/g, ''); // Grafana variables ($tenant, $__rate_interval)
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const id = m[0];
    if (id.startsWith('edgefl') || id.includes(':')) names.add(id);
  }
  return names;
}

/** Label names a PromQL expression groups or matches by (inside `{…}`, `by (…)`, `on (…)` and the like). */
export function labelNamesIn(promql: string): Set<string> {
  const labels = new Set<string>();
  const noStrings = promql.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of noStrings.matchAll(/\{([^{}]*)\}/g)) {
    for (const l of m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.add(l[1]!);
  }
  for (const m of noStrings.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const l of m[1]!.split(',')) if (l.trim()) labels.add(l.trim());
  }
  return labels;
}
