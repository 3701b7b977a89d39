import { writeReport } from '../report/index.js';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { computeEpsilon } from '@edgefl/fl';
import { buildOnnx, DIGITS_MLP, initWeights, mlp, readOnnxTensors, type ModelSpec } from '@edgefl/model';
import {
  centralizedBaseline,
  chooseAttackers,
  evaluate,
  Fleet,
  type SplitDataset,
  type Table,
} from '@edgefl/sim';
import pino from 'pino';
import { SERVICES, up, type Stack } from '../commands/up.js';
import type { DemoOptions } from './options.js';
import {
  DEMO_SUMMARY_FORMAT,
  type DemoSummary,
  type Histogram,
  type ReleaseFigures,
  type RoundFigures,
} from './summary.js';
import type { DemoView, RoundStatus } from './view.js';

const TENANT = 'demo';
const MODEL = 'demo-model';
/** Stages of each round's release: a canary of 10%, half the fleet, everyone (a small fleet needs few stages). */
const STAGES = [10, 50, 100];
const ROUND_DEADLINE_MS = 180_000;
const ROLLOUT_TIMEOUT_MS = 180_000;
/** The aggregator's default: an accepted update whose norm's robust z-score is above this is flagged an outlier. */
const OUTLIER_Z = 3;
/** Secure aggregation: every coordinate of an update in [-1, 1]; each phase waits at most 30 s for stragglers. */
const SECAGG = { bound: 1, phaseTimeoutMs: 30_000 };
/** The aggregator's default bucket size with a robust rule over secure aggregation (services/aggregator). */
const SECAGG_BUCKET = 10;
/** With --max-norm: how long a round stays open after half the fleet's updates were accepted. */
const MAX_NORM_GRACE_MS = 8_000;
const LATENCY_BOUNDS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000];

/** The model the demo trains for a data set: the digits MLP of DESIGN.md §8, else one hidden layer of 32. */
export function modelFor(dataset: SplitDataset): ModelSpec {
  const classes = dataset.classNames.length;
  const inputs = dataset.train.cols;
  if (inputs === DIGITS_MLP.inputs && classes === DIGITS_MLP.outputs) return DIGITS_MLP;
  return classes === 2 ? mlp(inputs, [32], 1, 'sigmoid') : mlp(inputs, [32], classes, 'softmax');
}

/**
 * Central DP over R rounds of FedAvg with every device selected (q = 1): the smallest noise multiplier whose R-fold
 * composition stays within ε at δ (libs/fl's RDP accountant). Bisection, since the accountant gives ε for σ and no
 * library here inverts it.
 */
export function noiseForEpsilon(epsilon: number, delta: number, rounds: number): number {
  let lo = 0.05;
  let hi = 1_000;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (computeEpsilon({ q: 1, sigma: mid, steps: rounds, delta }).epsilon > epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The robust rules' parameters for a fleet of n with f suspected attackers (at least 1). */
export function ruleParams(rule: string | null, n: number, f: number): Record<string, number> {
  const suspected = Math.max(1, f);
  switch (rule) {
    case 'trimmed-mean':
      return { beta: Math.min(0.45, Math.max(0.1, suspected / n)) };
    case 'krum':
    case 'bulyan':
      return { f: suspected };
    case 'multi-krum':
      return { f: suspected, m: Math.max(1, n - suspected) };
    default:
      return {};
  }
}

function histogram(values: readonly number[]): Histogram {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  for (const v of values) {
    const i = LATENCY_BOUNDS_MS.findIndex((b) => v < b);
    counts[i === -1 ? LATENCY_BOUNDS_MS.length : i]!++;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) =>
    sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { boundsMs: LATENCY_BOUNDS_MS, counts, p50: q(0.5), p99: q(0.99) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined), or fails with `what` after `timeoutMs`. */
async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end)
      throw new Error(`the demo gave up waiting: ${what} (${Math.round(timeoutMs / 1000)} s)`);
    await sleep(everyMs);
  }
}

/** JSON over HTTP with a bearer token; a non-2xx answer is an error naming the call and the problem's detail. */
function client(base: string, token: string) {
  return async <T>(method: string, path: string, body?: unknown, raw?: Uint8Array): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(raw
          ? { 'content-type': 'application/octet-stream' }
          : body !== undefined
            ? { 'content-type': 'application/json' }
            : {}),
      },
      ...(raw ? { body: Buffer.from(raw) } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) {
      const text = await res.text();
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not JSON
      }
      throw new Error(`${method} ${path}: HTTP ${res.status} ${detail}`);
    }
    if (path.endsWith('/artifact')) return new Uint8Array(await res.arrayBuffer()) as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : null) as T;
  };
}

interface RoundView {
  roundId: string;
  state: string;
  closeReason: string | null;
  epsilon: number;
  epsilonTotal: number;
}
interface RoundReport {
  state: string;
  counts: { received: number; accepted: number; rejected: number };
  participants: string[];
  rejections: Array<{ deviceId: string; reason: string; detail?: string | null }>;
  outliers?: string[];
}
interface ReleaseView {
  id: string;
  state: string;
  stageIndex: number;
  stages: Array<{ name: string; percentage: number }>;
  transitions: Array<{ toState: string; stage: { name: string; percentage: number }; at: number }>;
}
interface VersionView {
  version: number;
  roundId: string | null;
  sizeBytes: number;
}

/** What a run gives back besides the summary: where its files are, and the aggregator's intake counts per round. */
export interface DemoRun {
  summary: DemoSummary;
  dataDir: string;
  logFile: string;
  intake: Array<{ roundId: string; received: number; accepted: number; rejected: number; updateIds: number }>;
}

/**
 * The whole loop, for real, in one process: boots the five services (`up()`, embedded bus and keys, every port
 * free), creates the tenant and model, publishes the initial version as the tenant's safe baseline, starts the
 * fleet (every device its own MQTT connection, registry token and SQLite buffer), then per round: opens it through
 * the aggregator's API, waits for the result, finds the signed version the registry made of it, evaluates it on the
 * held-out test split, releases it in stages and waits until every device runs it. Finally the devices serve the
 * test rows (escalating low-confidence ones to the cloud tier) and the summary is written.
 */
export async function runDemo(
  o: DemoOptions,
  data: { dataset: SplitDataset; partitions: Table[] },
  view: DemoView,
): Promise<DemoRun> {
  const startedAt = new Date();
  const dataDir = o.dataDir ? resolve(o.dataDir) : mkdtempSync(join(tmpdir(), 'edgefl-demo-'));
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, 'services.log');
  view.line(`service logs: ${logFile} (devices: ${join(dataDir, 'fleet.log')})`);
  const logs = pino.destination({ dest: logFile, sync: false, mkdir: true });
  // the devices' own log lines (OTA steps, rounds) go beside the services' log, never over the view
  const fleetLogFile = join(dataDir, 'fleet.log');
  const fleetLog = pino.destination({ dest: fleetLogFile, sync: false, mkdir: true });
  const spec = modelFor(data.dataset);
  const registryToken = randomBytes(24).toString('base64url');
  const aggregatorToken = randomBytes(24).toString('base64url');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EDGEFL_BUS: 'embedded',
    EDGEFL_KEYS: 'local',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    GATEWAY_MQTT_PORT: '0',
    REGISTRY_ADMIN_TOKEN: registryToken,
    AGGREGATOR_ADMIN_TOKEN: aggregatorToken,
    // a demo fleet is small and quick: stages advance on installs (no health reports needed), after a short soak
    REGISTRY_MIN_SOAK_MS: '500',
    REGISTRY_MIN_DEVICES: '0',
    REGISTRY_ROLLOUT_TICK_MS: '200',
    AGGREGATOR_TICK_MS: '100',
    // every device of the fleet sits on one loopback address: the per-connection limits stay, the abuse ones too
    ...(o.dpEpsilon !== null ? { AGGREGATOR_DP_BUDGET_EPSILON: String(o.dpEpsilon * 1.0001) } : {}),
    ...(o.dpEpsilon !== null ? { AGGREGATOR_DP_BUDGET_DELTA: String(o.dpDelta) } : {}),
  };
  for (const name of SERVICES) env[`${name.toUpperCase()}_PORT`] = '0';

  view.phase('booting the five services', 0, SERVICES.length);
  let stack: Stack | null = null;
  let fleet: Fleet | null = null;
  try {
    stack = await up({ dataDir, env, logDestination: logs, log: (line) => view.line(line) });
    view.phase('booting the five services', SERVICES.length, SERVICES.length);
    const url = (name: string) => stack!.services.find((s) => s.name === name)!.url;
    const mqttUrl = stack.services.find((s) => s.name === 'gateway')?.mqttUrl;
    if (!mqttUrl) throw new Error('the gateway reported no MQTT URL');
    const registry = client(url('registry'), registryToken);
    const aggregator = client(url('aggregator'), aggregatorToken);

    await registry('POST', '/v1/tenants', { id: TENANT, name: 'edgefl demo' });
    await registry('POST', `/v1/tenants/${TENANT}/models`, {
      id: MODEL,
      name: `${o.dataset} MLP`,
      spec,
      deltaWindow: 3,
    });
    const initial = await registry<VersionView>(
      'POST',
      `/v1/models/${MODEL}/versions`,
      undefined,
      buildOnnx(spec, initWeights(spec, o.seed, 0.1)),
    );
    await registry('PUT', `/v1/tenants/${TENANT}/baseline`, { modelId: MODEL, version: initial.version });

    const ids = data.partitions.map((_, i) => `dev-${String(i).padStart(4, '0')}`);
    // the attackers, chosen by the seed: they train and speak the protocol like the others, and send the attack
    const attackerIds = o.attack === null ? new Set<string>() : chooseAttackers(ids, o.attackers, o.seed);
    const attack = o.attack;
    if (attack !== null) view.line(`attackers (${attack}): ${[...attackerIds].sort().join(', ')}`);
    const uploads = new Map<string, number>(); // round id → bytes of accepted updates
    const downloads = {
      delta: 0,
      full: 0,
      deltaBytes: 0,
      fullBytes: 0,
      fullEquivalent: 0,
      perVersion: new Map<number, number>(),
    };
    const sizes = new Map<number, number>([[initial.version, initial.sizeBytes]]);
    view.phase('starting the fleet', 0, ids.length);
    fleet = await Fleet.start({
      registryUrl: url('registry'),
      mqttUrl,
      tenant: TENANT,
      modelId: MODEL,
      adminToken: registryToken,
      dataDir: join(dataDir, 'fleet'),
      devices: data.partitions.map((train, i) => ({
        id: ids[i]!,
        train,
        ...(attack !== null && attackerIds.has(ids[i]!) ? { attack: { kind: attack } } : {}),
      })),
      seed: o.seed,
      secureAggregation: o.secureAggregation,
      federated: { optimizer: 'sgd', compression: 'float32', seed: o.seed },
      inference: { cloud: 'mqtt', escalationThreshold: 0.6, escalationTimeoutMs: 300 },
      onStarted: (n, total) => view.phase('starting the fleet', n, total),
      log: (id, line) => fleetLog.write(`${new Date().toISOString()} ${id} ${line}\n`),
      onOtaStatus: (_id, s) => {
        if (s.state !== 'ACTIVE' || s.bytesDownloaded === 0) return;
        if (s.viaDelta) {
          downloads.delta++;
          downloads.deltaBytes += s.bytesDownloaded;
        } else {
          downloads.full++;
          downloads.fullBytes += s.bytesDownloaded;
        }
        downloads.fullEquivalent += sizes.get(s.toVersion) ?? s.bytesTotal ?? s.bytesDownloaded;
        downloads.perVersion.set(
          s.toVersion,
          (downloads.perVersion.get(s.toVersion) ?? 0) + s.bytesDownloaded,
        );
      },
      onRound: (_id, outcome) => {
        if (outcome.status === 'accepted')
          uploads.set(outcome.roundId, (uploads.get(outcome.roundId) ?? 0) + outcome.payloadBytes);
      },
    });
    const f = fleet;
    const everyoneOn = (version: number) => f.devices.every((d) => d.version === version);
    await until(`every device installing v${initial.version}`, ROLLOUT_TIMEOUT_MS, async () =>
      everyoneOn(initial.version) ? true : undefined,
    );

    // the centralized baseline: the same model on the whole training split, as many passes per round as a device
    // makes over its own rows (the SDK's Trainer, the devices' optimizer and learning rate), evaluated per round
    const baselines = centralizedBaseline(spec, data.dataset.train, data.dataset.test, data.dataset.task, {
      rounds: o.rounds,
      epochsPerRound: o.localEpochs,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      optimizer: 'sgd',
      seed: o.seed,
      initial: initWeights(spec, o.seed, 0.1),
    });
    const baseline = baselines.at(-1)!;
    view.line(
      `centralized baseline (same training split, ${o.rounds * o.localEpochs} epochs): ${(baseline.accuracy * 100).toFixed(1)}% on the test split${baseline.rocAuc === null ? '' : `, ROC AUC ${baseline.rocAuc.toFixed(3)}`}`,
    );
    const rule = o.robust ?? 'fedavg';
    const params = ruleParams(o.robust, ids.length, Math.round(o.attackers * ids.length));

    const dp =
      o.dpEpsilon === null
        ? null
        : { clipNorm: 1, noiseMultiplier: noiseForEpsilon(o.dpEpsilon, o.dpDelta, o.rounds) };
    const rounds: RoundFigures[] = [];
    const releases: ReleaseFigures[] = [];
    const rejected: DemoSummary['rejectedUpdates'][number][] = [];
    const intake: DemoRun['intake'] = [];
    let current = initial.version;
    for (let r = 1; r <= o.rounds; r++) {
      const roundStart = Date.now();
      const status: RoundStatus = {
        round: r,
        participants: 0,
        selected: ids.length,
        accuracy: null,
        epsilon: null,
        stage: 'training',
        mix: f.versionMix(),
      };
      view.round(status);
      const opened = await aggregator<RoundView>('POST', '/v1/rounds', {
        roundId: `demo-r${r}-${randomBytes(4).toString('hex')}`,
        tenant: TENANT,
        modelId: MODEL,
        baseVersion: current,
        selectedDevices: ids,
        // a norm bound rejects updates, which then never count towards a quorum of everyone: the round closes at
        // half the fleet plus a grace for the rest (the fleet answers within seconds), not at the deadline
        quorum: o.maxNorm === null ? ids.length : Math.ceil(ids.length / 2),
        ...(o.maxNorm === null ? {} : { graceMs: MAX_NORM_GRACE_MS }),
        deadline: Date.now() + ROUND_DEADLINE_MS,
        training: { localEpochs: o.localEpochs, batchSize: o.batchSize, learningRate: o.learningRate },
        strategy: rule,
        strategyParams: params,
        outlierZ: OUTLIER_Z,
        ...(o.maxNorm !== null ? { maxNorm: o.maxNorm } : {}),
        ...(o.secureAggregation ? { privacyMode: 'secure-aggregation', secureAggregation: SECAGG } : {}),
        ...(dp
          ? {
              dp: {
                mode: 'central',
                clipNorm: dp.clipNorm,
                noiseMultiplier: dp.noiseMultiplier,
                delta: o.dpDelta,
                samplingRate: 1,
              },
            }
          : {}),
      });
      const roundId = opened.roundId;
      const done = await until(`round ${r} (${roundId}) to finish`, ROUND_DEADLINE_MS + 30_000, async () => {
        const report = await aggregator<RoundReport>('GET', `/v1/rounds/${roundId}/report`);
        status.participants = report.counts.accepted;
        view.phase(`round ${r}: updates in`, report.counts.received, ids.length);
        view.round(status);
        if (report.state === 'DONE' || report.state === 'FAILED' || report.state === 'CANCELLED')
          return report;
        return undefined;
      });
      const round = await aggregator<RoundView>('GET', `/v1/rounds/${roundId}`);
      if (done.state !== 'DONE')
        throw new Error(`round ${r} ended ${done.state}: ${round.closeReason ?? 'no reason given'}`);
      const updateIds = new Set(
        (
          (await aggregator<{ updates: Array<{ updateId: string }> }>('GET', `/v1/rounds/${roundId}/report`))
            .updates ?? []
        ).map((u) => u.updateId),
      );
      intake.push({ roundId, ...done.counts, updateIds: updateIds.size });
      for (const x of done.rejections)
        rejected.push({
          round: r,
          deviceId: x.deviceId,
          reason: x.reason,
          detail: x.detail ?? null,
          attacker: attackerIds.has(x.deviceId),
        });
      status.epsilon = dp ? round.epsilonTotal : null;
      status.stage = 'signing';
      view.round(status);

      const version = await until(`the registry to sign the result of round ${r}`, 60_000, async () => {
        const list = await registry<VersionView[] | { items: VersionView[] }>(
          'GET',
          `/v1/models/${MODEL}/versions`,
        );
        const items = Array.isArray(list) ? list : list.items;
        return items.find((v) => v.roundId === roundId);
      });
      sizes.set(version.version, version.sizeBytes);
      const artifact = await registry<Uint8Array>(
        'GET',
        `/v1/models/${MODEL}/versions/${version.version}/artifact`,
      );
      const figures = evaluate(spec, readOnnxTensors(artifact), data.dataset.test, data.dataset.task);
      status.accuracy = figures.accuracy;
      view.round(status);

      const release = await registry<ReleaseView>('POST', `/v1/models/${MODEL}/releases`, {
        version: version.version,
        stages: STAGES,
        gates: { minDevicesReporting: 0, minSoakMs: 500 },
      });
      const activeByStage = new Map<number, number>();
      const final = await until(
        `the release of v${version.version} to reach every device`,
        ROLLOUT_TIMEOUT_MS,
        async () => {
          const now = await registry<ReleaseView>('GET', `/v1/releases/${release.id}`);
          const on = f.devices.filter((d) => d.version === version.version).length;
          // devices running the version while each stage was the current one (the last reading of that stage)
          if (now.state === 'ROLLING_OUT') activeByStage.set(now.stages[now.stageIndex]!.percentage, on);
          // a stage the poll never saw current (the rollout passed it between two readings, as on a loaded
          // machine) gets this first later reading: at least the installs that let it advance
          const passed = now.state === 'ROLLING_OUT' ? now.stageIndex : now.stages.length;
          for (const stage of now.stages.slice(0, passed))
            if (!activeByStage.has(stage.percentage)) activeByStage.set(stage.percentage, on);
          status.stage =
            now.state === 'ROLLING_OUT'
              ? `${now.stages[now.stageIndex]?.percentage ?? '?'}%`
              : now.state.toLowerCase();
          status.mix = f.versionMix();
          view.phase(`round ${r}: v${version.version} installed`, on, ids.length);
          view.round(status);
          if (now.state === 'HALTED' || now.state === 'ROLLED_BACK') return now;
          return now.state === 'COMPLETED' && everyoneOn(version.version) ? now : undefined;
        },
      );
      if (final.state !== 'COMPLETED')
        throw new Error(`the release of v${version.version} ended ${final.state}`);
      releases.push({
        version: version.version,
        outcome: 'completed',
        stages: final.transitions
          .filter((t) => t.toState === 'ROLLING_OUT' || t.toState === 'COMPLETED')
          .filter((t, i, all) => all.findIndex((u) => u.stage.percentage === t.stage.percentage) === i)
          .map((t, i) => ({
            stage: i + 1,
            percent: t.stage.percentage,
            enteredAt: new Date(t.at).toISOString(),
            // the last stage ends with every device on the version (the loop above waited for it)
            devicesActive:
              i === final.stages.length - 1 ? ids.length : (activeByStage.get(t.stage.percentage) ?? 0),
          })),
      });
      current = version.version;
      rounds.push({
        round: r,
        roundId,
        participants: done.counts.accepted,
        rejected: done.counts.rejected,
        accuracy: figures.accuracy,
        rocAuc: figures.rocAuc,
        baseline: baselines[r - 1]!,
        outliers: done.outliers?.length ?? 0,
        epsilonSpent: status.epsilon,
        wallSeconds: (Date.now() - roundStart) / 1000,
        version: version.version,
        bytesPerDevice: {
          up: (uploads.get(roundId) ?? 0) / Math.max(1, done.counts.accepted),
          down: (downloads.perVersion.get(version.version) ?? 0) / ids.length,
        },
      });
      status.stage = 'completed';
      status.mix = f.versionMix();
      view.round(status);
    }

    view.phase('serving the held-out rows', 0, 1);
    const served = await f.serve(
      data.dataset.test,
      Math.max(1, Math.ceil(data.dataset.test.rows / ids.length)),
    );
    view.phase('serving the held-out rows', 1, 1);
    view.line(
      `served ${served.predictions} predictions on the devices: ${served.bySource.edge} edge, ${served.bySource.cloud} cloud, ${served.bySource.edge_fallback} edge fallback (cloud tier did not answer); ${(
        (served.correct / Math.max(1, served.predictions)) *
        100
      ).toFixed(1)}% correct`,
    );
    const cost = f.cost();
    view.line(
      `fleet cost: ${cost.devices} devices, ${cost.connected} connected, RSS ${(cost.rssBytes / 2 ** 20).toFixed(0)} MiB, ${cost.fileDescriptors ?? '?'} file descriptors (${cost.sockets ?? '?'} sockets) in this process`,
    );
    const finishedAt = new Date();
    const summary: DemoSummary = {
      format: DEMO_SUMMARY_FORMAT,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      wallSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      settings: {
        devices: o.devices,
        rounds: o.rounds,
        dataset: o.dataset,
        label: o.label,
        task: data.dataset.task,
        attackers: o.attackers,
        attack: o.attack,
        attackerIds: [...attackerIds].sort(),
        robust: o.robust,
        defence: {
          rule,
          params,
          maxNorm: o.maxNorm,
          outlierZ: OUTLIER_Z,
          bucketSize: o.secureAggregation && o.robust !== null ? SECAGG_BUCKET : null,
        },
        secureAggregation: o.secureAggregation,
        dpEpsilon: o.dpEpsilon,
        dpDelta: o.dpEpsilon === null ? null : o.dpDelta,
        dirichletAlpha: o.dirichletAlpha,
        seed: o.seed,
      },
      baseline: { accuracy: baseline.accuracy, rocAuc: baseline.rocAuc },
      rounds,
      rejectedUpdates: rejected,
      releases,
      ota: {
        deltaDownloads: downloads.delta,
        fullDownloads: downloads.full,
        deltaBytes: downloads.deltaBytes,
        fullBytes: downloads.fullBytes,
        fullEquivalentBytes: downloads.fullEquivalent,
      },
      latency: { edge: histogram(served.edgeLatencyMs), cloud: histogram(served.cloudLatencyMs) },
      fleetVersionMix: f.versionMix(),
    };
    // always beside the logs (the report reads it later); and where --json says
    for (const path of [join(dataDir, 'summary.json'), ...(o.json ? [resolve(o.json)] : [])]) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${JSON.stringify(summary, null, 2)}\n`);
    }
    view.line(`summary: ${o.json ? resolve(o.json) : join(dataDir, 'summary.json')}`);
    if (o.report) {
      await writeReport(summary, resolve(o.report));
      view.line(`report: ${resolve(o.report)}`);
    }
    return { summary, dataDir, logFile, intake };
  } finally {
    view.phase('stopping', 0, 1);
    await fleet?.stop().catch(() => undefined);
    await stack?.stop().catch(() => undefined);
    for (const stream of [logs, fleetLog]) {
      try {
        stream.flushSync();
      } catch {
        // not open yet: nothing to flush
      }
    }
    view.phase('stopping', 1, 1);
  }
}
