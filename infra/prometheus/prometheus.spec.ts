// The Prometheus rules: promtool accepts the config and the rules and passes their unit tests (where promtool is
// installed; a loud SKIPPED line otherwise), the generated SLO rules are current, and every metric a rule reads
// exists (a fleet metric of services/telemetry, a metric a service registers, or a recorded one).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { knownMetricNames, labelNamesIn, metricNamesIn, REPO_ROOT } from '../metric-names.js';

const dir = join(REPO_ROOT, 'infra', 'prometheus');
const ruleFiles = readdirSync(join(dir, 'rules'))
  .filter((f) => f.endsWith('.rules.yml'))
  .map((f) => join('rules', f));
const testFiles = readdirSync(dir).filter((f) => f.endsWith('.test.yml'));

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
}
const groups = ruleFiles.flatMap(
  (f) => (parse(readFileSync(join(dir, f), 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups,
);
const rules = groups.flatMap((g) => g.rules);

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!promtool) {
  const line =
    'SKIPPED infra/prometheus promtool check/test rules: promtool not installed (Debian: apt-get install prometheus)';
  process.stdout.write(`${line}\n`);
  process.stderr.write(`${line}\n`);
}

const run = (args: string[]) => {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
};

describe.skipIf(!promtool)('promtool', () => {
  it('accepts prometheus.yml and every rule file it loads', () => {
    const config = run(['check', 'config', 'prometheus.yml']);
    expect(config.output).toContain(`${ruleFiles.length} rule files found`);
    expect(config.status, config.output).toBe(0);
    const check = run(['check', 'rules', ...ruleFiles]);
    expect(check.status, check.output).toBe(0);
  });

  it.each(testFiles)('passes the rule unit tests of %s', (file) => {
    const test = run(['test', 'rules', file]);
    expect(test.status, test.output).toBe(0);
    expect(test.output).toContain('SUCCESS');
  });

  it('fails a rule unit test that expects a page which does not fire (the tests can fail)', () => {
    const wrong = readFileSync(join(dir, 'slo.test.yml'), 'utf8').replace(
      /alertname: EdgeflSloBurnRatePage1h\n(\s+)exp_alerts: \[\]/,
      'alertname: EdgeflSloBurnRatePage1h\n$1exp_alerts: [{ exp_labels: { slo: inference-availability } }]',
    );
    expect(wrong).toContain('exp_labels: { slo: inference-availability } }]');
    const tmp = mkdtempSync(join(tmpdir(), 'edgefl-promtool-'));
    try {
      const file = join(tmp, 'wrong.test.yml');
      writeFileSync(file, wrong.replace('- rules/slo.rules.yml', `- ${join(dir, 'rules', 'slo.rules.yml')}`));
      const r = run(['test', 'rules', file]);
      expect(r.output).toContain('FAILED');
      expect(r.output).toContain('EdgeflSloBurnRatePage1h');
      expect(r.status).not.toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('rules', () => {
  it('the generated SLO rules are current (node infra/prometheus/gen-slo-rules.mjs)', () => {
    const r = spawnSync(process.execPath, [join(dir, 'gen-slo-rules.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('every rule file is loaded by prometheus.yml and mounted in the compose stack', () => {
    const config = parse(readFileSync(join(dir, 'prometheus.yml'), 'utf8')) as { rule_files: string[] };
    expect(config.rule_files).toEqual(['rules/*.rules.yml']);
    expect(ruleFiles.length).toBeGreaterThanOrEqual(2);
    const compose = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain('./infra/prometheus/rules:/etc/prometheus/rules:ro');
  });

  it('read only metrics that exist: fleet metrics, metrics a service registers, or recorded series', () => {
    const known = knownMetricNames(rules.flatMap((r) => (r.record ? [r.record] : [])));
    const unknown = rules.flatMap((r) => [...metricNamesIn(r.expr)].filter((n) => !known.has(n)));
    expect(unknown).toEqual([]);
    // the check itself sees names (a parser that found none would pass anything)
    expect(metricNamesIn(rules.find((r) => r.alert === 'EdgeflBusDeadLetters')!.expr)).toEqual(
      new Set(['edgefl_bus_dead_lettered_total']),
    );
    expect(
      [...metricNamesIn('rate(edgefl_no_such_metric_total{a="b:c"}[5m])')].filter((n) => !known.has(n)),
    ).toEqual(['edgefl_no_such_metric_total']);
  });

  it('page on all four objectives with both page rows, and never group by a device', () => {
    const alerts = rules.filter((r) => r.alert?.startsWith('EdgeflSloBurnRate'));
    expect(alerts.map((a) => [a.alert, a.labels?.['severity']])).toEqual([
      ['EdgeflSloBurnRatePage1h', 'page'],
      ['EdgeflSloBurnRatePage6h', 'page'],
      ['EdgeflSloBurnRateTicket1d', 'ticket'],
      ['EdgeflSloBurnRateTicket3d', 'ticket'],
    ]);
    const objectives = rules
      .filter((r) => r.record === 'edgefl_slo:objective:ratio')
      .map((r) => r.labels?.['sli']);
    expect(objectives).toEqual(['AVAILABILITY', 'LATENCY_P99', 'FRESHNESS', 'OTA_SUCCESS']);
    for (const r of rules) {
      const labels = labelNamesIn(r.expr);
      expect(
        [...labels].filter((l) => /device/i.test(l)),
        r.record ?? r.alert,
      ).toEqual([]);
    }
  });
});
