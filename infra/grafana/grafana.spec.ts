// The Grafana dashboards and their provisioning: every dashboard parses, each panel's PromQL names only metrics that
// exist (fleet metrics, metrics a service registers, series the Prometheus rules record), the datasource uid is the
// provisioned one, and docker-compose.yml runs a pinned Grafana with files that exist where provisioning looks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { knownMetricNames, labelNamesIn, metricNamesIn, REPO_ROOT } from '../metric-names.js';

const dir = join(REPO_ROOT, 'infra', 'grafana');
const dashboardFiles = readdirSync(join(dir, 'dashboards')).filter((f) => f.endsWith('.json'));

interface Target {
  expr?: string;
  refId: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string; datasource?: { uid: string } }[] };
}

const dashboards = dashboardFiles.map((f) => ({
  file: f,
  board: JSON.parse(readFileSync(join(dir, 'dashboards', f), 'utf8')) as Dashboard,
}));
const panelsOf = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);

/** The series names the Prometheus rules record (dashboards may read them). */
function recordedNames(): string[] {
  const rulesDir = join(REPO_ROOT, 'infra', 'prometheus', 'rules');
  return readdirSync(rulesDir)
    .filter((f) => f.endsWith('.yml'))
    .flatMap((f) =>
      (
        parse(readFileSync(join(rulesDir, f), 'utf8')) as { groups: { rules: { record?: string }[] }[] }
      ).groups
        .flatMap((g) => g.rules)
        .flatMap((r) => (r.record ? [r.record] : [])),
    );
}

const datasource = parse(
  readFileSync(join(dir, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'),
) as {
  datasources: { uid: string; type: string; url: string }[];
};
const provider = parse(readFileSync(join(dir, 'provisioning', 'dashboards', 'edgefl.yml'), 'utf8')) as {
  providers: { type: string; options: { path: string } }[];
};

describe('Grafana dashboards', () => {
  it('are the four of the issue, current with their generator, with unique uids', () => {
    expect(dashboards.map((d) => d.board.uid).sort()).toEqual([
      'edgefl-fl-rounds',
      'edgefl-fleet-overview',
      'edgefl-rollout',
      'edgefl-slo',
    ]);
    const r = spawnSync(process.execPath, [join(dir, 'gen-dashboards.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it.each(dashboardFiles)(
    '%s: every panel queries the provisioned Prometheus, only for metrics that exist',
    (file) => {
      const { board } = dashboards.find((d) => d.file === file)!;
      const known = knownMetricNames(recordedNames());
      const uid = datasource.datasources[0]!.uid;
      const panels = panelsOf(board.panels);
      expect(panels.length).toBeGreaterThan(3);
      const ids = new Set<number>();
      for (const panel of panels) {
        expect(ids.has(panel.id), `${file}: duplicate panel id ${panel.id}`).toBe(false);
        ids.add(panel.id);
        expect(
          panel.gridPos.x + panel.gridPos.w,
          `${panel.title} fits the 24-column grid`,
        ).toBeLessThanOrEqual(24);
        expect(panel.datasource?.uid, panel.title).toBe(uid);
        expect(panel.targets?.length, `${panel.title} has queries`).toBeGreaterThan(0);
        for (const target of panel.targets!) {
          expect(target.datasource?.uid ?? uid).toBe(uid);
          const names = metricNamesIn(target.expr ?? '');
          const unknown = [...names].filter((n) => !known.has(n));
          expect(unknown, `${file} / ${panel.title} / ${target.refId}`).toEqual([]);
          // ALERTS is Prometheus's own series of alert states; every other query reads one of ours
          if (!/\bALERTS\b/.test(target.expr ?? '')) expect(names.size, panel.title).toBeGreaterThan(0);
          expect(
            [...labelNamesIn(target.expr ?? '')].filter((l) => /device/i.test(l)),
            panel.title,
          ).toEqual([]);
        }
      }
      for (const variable of board.templating.list) {
        const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
        expect(
          [...metricNamesIn(query)].filter((n) => !known.has(n)),
          `variable ${variable.name}`,
        ).toEqual([]);
        expect(variable.datasource?.uid).toBe(uid);
      }
    },
  );

  it('the metric check catches a name that does not exist (it can fail)', () => {
    const known = knownMetricNames(recordedNames());
    const names = metricNamesIn(
      'sum by (tenant) (rate(edgefl_fleet_inference_totl{tenant=~"$tenant"}[$__rate_interval]))',
    );
    expect([...names].filter((n) => !known.has(n))).toEqual(['edgefl_fleet_inference_totl']);
  });
});

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!promtool) {
  const line =
    'SKIPPED infra/grafana PromQL syntax check: promtool not installed (Debian: apt-get install prometheus)';
  process.stdout.write(`${line}\n`);
  process.stderr.write(`${line}\n`);
}

describe.skipIf(!promtool)('Grafana queries are valid PromQL', () => {
  it('promtool parses every panel query (as recording rules, dashboard variables substituted)', () => {
    const exprs = dashboards.flatMap(({ board }) =>
      panelsOf(board.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')),
    );
    const concrete = (e: string) => e.replace(/\$__rate_interval/g, '5m').replace(/\$[a-z_]+/g, '.*');
    const rules = {
      groups: [{ name: 'dashboards', rules: exprs.map((e, i) => ({ record: `q${i}`, expr: concrete(e) })) }],
    };
    const tmp = mkdtempSync(join(tmpdir(), 'edgefl-grafana-'));
    try {
      const file = join(tmp, 'queries.rules.yml');
      writeFileSync(file, stringify(rules));
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`${exprs.length} rules found`);
      // and a broken query is refused (the check can fail)
      writeFileSync(
        file,
        stringify({ groups: [{ name: 'x', rules: [{ record: 'q', expr: 'sum by (tenant (x)' }] }] }),
      );
      expect(spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' }).status).not.toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('Grafana provisioning and the compose stack', () => {
  interface ComposeService {
    image?: string;
    volumes?: string[];
    depends_on?: Record<string, { condition: string }> | string[];
    healthcheck?: unknown;
  }
  const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const grafana = compose.services['grafana'];

  it('the datasource is the stack Prometheus, and the provider reads where the dashboards are mounted', () => {
    expect(datasource.datasources).toHaveLength(1);
    expect(datasource.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    expect(compose.services['prometheus']).toBeDefined();
    expect(provider.providers[0]).toMatchObject({ type: 'file' });
    const mounts = (grafana?.volumes ?? []).map((v) => {
      const [host, container] = v.split(':');
      return { host: host!, container: container! };
    });
    const dashboardsMount = mounts.find((m) => m.container === provider.providers[0]!.options.path);
    expect(dashboardsMount?.host).toBe('./infra/grafana/dashboards');
    expect(mounts.find((m) => m.container === '/etc/grafana/provisioning')?.host).toBe(
      './infra/grafana/provisioning',
    );
  });

  it('runs a pinned Grafana after Prometheus, with every mounted file present', () => {
    expect(grafana, 'a grafana service in docker-compose.yml').toBeDefined();
    expect(grafana!.image).toMatch(/^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/);
    expect(grafana!.depends_on).toMatchObject({ prometheus: { condition: 'service_healthy' } });
    expect(grafana!.healthcheck).toBeDefined();
    // every host path any service mounts exists (Prometheus's rules and config, Grafana's provisioning, Vault's init)
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const host = volume.split(':')[0]!;
        if (!host.startsWith('./')) continue; // a named volume
        expect(existsSync(join(REPO_ROOT, posix.normalize(host))), `${name}: ${host}`).toBe(true);
      }
    }
    const home = (grafana as { environment?: Record<string, string> }).environment?.[
      'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'
    ];
    expect(home).toBe(`${provider.providers[0]!.options.path}/fleet-overview.json`);
    expect(existsSync(join(dir, 'dashboards', 'fleet-overview.json'))).toBe(true);
  });
});
