// Telemetry intake: 10,000 simulated devices sending one event a second each (80 % inference logs, 20 %
// heartbeats, generated with libs/contracts' types), published through the embedded bus while the telemetry service
// (its @OnEvent batch consumers: validation, transactional inbox, SLI rollups, device state, all in SQLite) ingests
// them: events/s from the first publish to the last event counted in edgefl_telemetry_events_ingested_total.
// Peer, same run, same generated load, same bus: a bare consumer that only decodes the records (TypedBus batches).
// Also: rollout-health computation per release (GET /v1/releases/{id}: canary vs baseline cohort), p99 latency of an
// SLI query (GET /v1/tenants/{t}/slis over 1 h) next to /health/live on the same server, and the memory of one
// tracked series (a rollup bucket with a packed HDR histogram) next to one holding a plain 32-bit HDR histogram.
// Target (issue 16): 10,000 devices x 1 event/s ingested, i.e. >= 10,000 events/s sustained.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCatalogBus, TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import type { DeviceTelemetry, InferenceLog, ReleaseEvent } from '@edgefl/contracts';
import { bootstrap } from '@edgefl/telemetry';
import { METRICS_REGISTRY } from '@edgefl/service-kit';
import hdr from 'hdr-histogram-js';
import type { Registry } from 'prom-client';
import { freePort } from './lib/process.ts';
import { figure, percentile, writeReport } from './lib/report.ts';

const DEVICES = Number(process.env.TELEMETRY_BENCH_DEVICES ?? 10_000);
const SECONDS = Number(process.env.TELEMETRY_BENCH_SECONDS ?? 6);
const PUBLISH_BATCH = 1_000;
const TENANT = 'bench';
const TOKEN = `bench-${randomUUID()}`;
const auth = { authorization: `Bearer ${TOKEN}` };
const groups = ['eu', 'us', 'apac', 'latam'];
const deviceId = (i: number) => `dev-${String(i).padStart(5, '0')}`;

const dir = mkdtempSync(join(tmpdir(), 'edgefl-telemetry-bench-'));
try {
  const busPath = join(dir, 'bus.sqlite');
  const service = await bootstrap({
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: dir,
      EDGEFL_BUS: 'embedded',
      EDGEFL_BUS_PATH: busPath,
      LOG_LEVEL: 'warn',
      TELEMETRY_ADMIN_TOKEN: TOKEN,
      TELEMETRY_HEALTH_INTERVAL_MS: '3600000',
      TELEMETRY_DRIFT_INTERVAL_MS: '3600000',
      TELEMETRY_SLO_INTERVAL_MS: '3600000',
    },
    shutdownHooks: false,
  });
  // the load is published through the service's own bus instance, as a gateway in the same process would (a second
  // EmbeddedBus on the same file hands the SQLite write lock back and forth between instances: measured apart below)
  const typed = service.app.get<TypedBus<KafkaTopicValues>>(TYPED_BUS);
  const other = await openCatalogBus({ adapter: 'embedded', path: busPath }, 'edgefl-telemetry-bench');
  // the service's own metrics registry, read in process (no HTTP polling while the event loop is busy ingesting)
  const registry = service.app.get<Registry>(METRICS_REGISTRY);
  const ingested = async (kind?: string): Promise<number> => {
    const m = registry.getSingleMetric('edgefl_telemetry_events_ingested_total');
    if (!m) return 0;
    const { values } = await m.get();
    return values
      .filter((v) => kind === undefined || v.labels['kind'] === kind)
      .reduce((n, v) => n + v.value, 0);
  };
  const waitFor = async (what: string, check: () => Promise<boolean>, limitMs = 600_000) => {
    const deadline = Date.now() + limitMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // ---- the fleet: registered devices and the two versions they run ----------------------------------------------
  for (let i = 0; i < DEVICES; i += PUBLISH_BATCH)
    await typed.publish(
      'edgefl.device.lifecycle.v1',
      Array.from({ length: Math.min(PUBLISH_BATCH, DEVICES - i) }, (_, k) => ({
        value: {
          eventId: randomUUID(),
          tenant: TENANT,
          deviceId: deviceId(i + k),
          event: 'REGISTERED' as const,
          publicKey: null,
          keyId: null,
          previousKeyId: null,
          reason: null,
          tokensNotBefore: null,
          timestamp: Date.now(),
        },
      })),
    );
  await typed.publish(
    'edgefl.model.version.v1',
    [1, 2].map((version) => ({
      value: {
        eventId: randomUUID(),
        tenant: TENANT,
        modelId: 'fraud',
        version,
        label: `v${version}`,
        parentVersion: null,
        origin: 'UPLOAD' as const,
        roundId: null,
        artifactUri: 'x',
        sha256: '0'.repeat(64),
        sizeBytes: 1,
        signingKeyId: 'k',
        metrics: {},
        createdAt: Date.now(),
      },
    })),
  );
  await waitFor(
    'the fleet',
    async () => (await ingested('lifecycle')) === DEVICES && (await ingested('version')) === 2,
  );

  // ---- the load: SECONDS seconds of the fleet, one event per device per second -------------------------------
  const now = Date.now();
  type Event =
    | { topic: 'edgefl.inference.log.v1'; value: InferenceLog }
    | { topic: 'edgefl.device.telemetry.v1'; value: DeviceTelemetry };
  const load = (): Event[] => {
    const events: Event[] = [];
    for (let s = 0; s < SECONDS; s++)
      for (let d = 0; d < DEVICES; d++) {
        const ts = now - (SECONDS - s) * 1_000;
        const version = d % 10 === 0 ? 2 : 1; // a 10 % canary on v2
        const id = deviceId(d);
        if ((d + s) % 5 === 0)
          events.push({
            topic: 'edgefl.device.telemetry.v1',
            value: {
              eventId: randomUUID(),
              tenant: TENANT,
              deviceId: id,
              modelId: 'fraud',
              modelVersion: version,
              ramTotalBytes: 1 << 30,
              ramFreeBytes: 1 << 29,
              cpuPercent: 20,
              accelerator: 'NONE',
              batteryPercent: null,
              networkType: 'WIFI',
              firmwareVersion: '1.2.3',
              timestamp: ts,
              group: groups[d % groups.length]!,
              featureSummaries: null,
            },
          });
        else
          events.push({
            topic: 'edgefl.inference.log.v1',
            value: {
              eventId: randomUUID(),
              tenant: TENANT,
              deviceId: id,
              modelId: 'fraud',
              modelVersion: version,
              prediction: [((d * 7 + s) % 100) / 100],
              label: null,
              confidence: 0.5 + ((d + s) % 50) / 100,
              latencyMs: 1 + ((d * 13 + s) % 40) / 4,
              inputHash: 'h',
              source: d % 20 === 0 ? 'CLOUD' : 'EDGE',
              errorCode: (d + s) % 97 === 0 ? 'RUNTIME' : null,
              cacheHit: null,
              arm: null,
              timestamp: ts,
            },
          });
      }
    return events;
  };
  const publishAll = async (events: Event[]) => {
    for (let i = 0; i < events.length; i += PUBLISH_BATCH) {
      const chunk = events.slice(i, i + PUBLISH_BATCH);
      const logs = chunk
        .filter((e) => e.topic === 'edgefl.inference.log.v1')
        .map((e) => ({ value: e.value as InferenceLog }));
      const beats = chunk
        .filter((e) => e.topic === 'edgefl.device.telemetry.v1')
        .map((e) => ({ value: e.value as DeviceTelemetry }));
      if (logs.length > 0) await typed.publish('edgefl.inference.log.v1', logs);
      if (beats.length > 0) await typed.publish('edgefl.device.telemetry.v1', beats);
    }
  };

  const events = load();
  const total = events.length;
  const before = await ingested();
  const t0 = performance.now();
  await publishAll(events);
  const published = performance.now();
  await waitFor('telemetry to ingest the load', async () => (await ingested()) - before >= total);
  const telemetrySeconds = (performance.now() - t0) / 1_000;
  const telemetryRate = total / telemetrySeconds;

  // ---- the peer: a bare consumer that only decodes the same kind of load ------------------------------------------
  const peerEvents = load();
  let decoded = 0;
  let peerDone = 0;
  const subs = await Promise.all(
    (['edgefl.inference.log.v1', 'edgefl.device.telemetry.v1'] as const).map((topic) =>
      typed.subscribeBatch({
        group: `bare-${randomUUID()}`,
        topics: [topic],
        handler: (records) => {
          decoded += records.length;
          if (decoded >= total) peerDone = performance.now();
        },
      }),
    ),
  );
  const p0 = performance.now();
  await publishAll(peerEvents);
  await waitFor('the bare consumer', async () => decoded >= total);
  const peerRate = total / ((peerDone - p0) / 1_000);
  for (const s of subs) await s.close();
  // telemetry consumed that second load too; let it finish before the queries
  await waitFor('telemetry to ingest the peer load', async () => (await ingested()) - before >= 2 * total);

  // ---- rollout health per release ---------------------------------------------------------------------------------
  const release: ReleaseEvent = {
    eventId: randomUUID(),
    tenant: TENANT,
    releaseId: 'rel-bench',
    modelId: 'fraud',
    occurredAt: now - (SECONDS + 5) * 1_000,
    event: {
      'io.edgefl.registry.ReleaseManifest': {
        releaseId: 'rel-bench',
        tenant: TENANT,
        modelId: 'fraud',
        version: 2,
        label: 'v2',
        artifactUri: 'x',
        sha256: '0'.repeat(64),
        sizeBytes: 1,
        signature: Buffer.alloc(64),
        signingKeyId: 'k',
        deltas: [],
        rollout: { stage: 'canary', percentage: 10, floorBucket: null },
        targeting: { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] },
        expiresAt: now + 86_400_000,
        createdAt: now,
        signedManifest: null,
      },
    },
  };
  await typed.publish('edgefl.registry.release.v1', [{ value: release }]);
  await waitFor('the release', async () => (await ingested('release')) === 1);
  const timed = async (path: string, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const res = await fetch(`${service.url}${path}`, { headers: auth }).catch((error: unknown) => {
        throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
      });
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      await res.arrayBuffer();
      out.push(performance.now() - t);
    }
    return out.sort((a, b) => a - b);
  };
  const health = await timed('/v1/releases/rel-bench', 30);
  const view = (await (await fetch(`${service.url}/v1/releases/rel-bench`, { headers: auth })).json()) as {
    canary: { devicesReporting: number; slis: { inferences: number } };
    baseline: { version: number; devicesReporting: number } | null;
  };
  const slis = await timed(`/v1/tenants/${TENANT}/slis?windowMs=3600000`, 200);
  const live = await timed('/health/live', 200);

  // one more figure: publishing from a second bus instance on the same file (another process in embedded mode)
  const crossEvents = load().slice(0, 5_000);
  const c0 = performance.now();
  for (let i = 0; i < crossEvents.length; i += PUBLISH_BATCH)
    await other.typed.publish(
      'edgefl.inference.log.v1',
      crossEvents
        .slice(i, i + PUBLISH_BATCH)
        .filter((e) => e.topic === 'edgefl.inference.log.v1')
        .map((e) => ({ value: e.value as InferenceLog })),
    );
  const crossRate =
    crossEvents.filter((e) => e.topic === 'edgefl.inference.log.v1').length /
    ((performance.now() - c0) / 1_000);
  await other.bus.close();
  await service.close();

  // ---- memory of one tracked series ------------------------------------------------------------------------------
  const { emptyRollup } = (await import(
    new URL('../services/telemetry/dist/sli/rollup.js', import.meta.url).href
  )) as {
    emptyRollup: () => {
      latency: { recordValue(v: number): void };
      confidenceBins: number[];
      inferences: number;
    };
  };
  const SERIES = 5_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  const heapOf = (make: (i: number) => unknown): number => {
    gc?.();
    const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers; // typed arrays live outside the heap
    const start = used();
    const keep: unknown[] = [];
    for (let i = 0; i < SERIES; i++) keep.push(make(i));
    gc?.();
    const bytes = (used() - start) / SERIES;
    if (keep.length !== SERIES) throw new Error('unreachable');
    return bytes;
  };
  const values = (i: number) => Array.from({ length: 200 }, (_, k) => 500 + ((i * 31 + k * 17) % 20_000));
  const packed = heapOf((i) => {
    const r = emptyRollup();
    for (const v of values(i)) r.latency.recordValue(v);
    r.inferences = 200;
    return r;
  });
  const plain = heapOf((i) => {
    const h = hdr.build({
      bitBucketSize: 32,
      lowestDiscernibleValue: 1,
      highestTrackableValue: 60_000_000,
      numberOfSignificantValueDigits: 2,
    });
    for (const v of values(i)) h.recordValue(v);
    return { counters: new Array(8).fill(0), bins: new Array(42).fill(0), h };
  });

  writeReport({
    name: 'telemetry-ingest',
    figures: [
      figure(
        `telemetry ingest, ${DEVICES.toLocaleString('en-US')} devices x 1 event/s through the embedded bus`,
        'events/s',
        telemetryRate,
        {
          name: 'bare consumer decoding the same load (TypedBus batches)',
          value: peerRate,
        },
      ),
      figure(
        'publishing the load alone (batches of 1,000, telemetry consuming alongside)',
        'events/s',
        total / ((published - t0) / 1_000),
      ),
      figure(
        'publishing from a second EmbeddedBus instance on the same file (telemetry consuming)',
        'events/s',
        crossRate,
      ),
      figure(
        'rollout-health computation per release (GET /v1/releases/{id}, p50)',
        'ms',
        percentile(health, 50),
      ),
      figure('rollout-health computation per release (p99)', 'ms', percentile(health, 99)),
      figure('p99 SLI query latency (GET /v1/tenants/{t}/slis, 1 h window)', 'ms', percentile(slis, 99), {
        name: 'GET /health/live on the same server',
        value: percentile(live, 99),
      }),
      figure(
        'memory per tracked series (rollup bucket, packed HDR histogram, 200 latencies)',
        'bytes',
        packed,
        {
          name: 'the same with a 32-bit-bucket HDR histogram',
          value: plain,
        },
      ),
    ],
    notes: [
      `${total.toLocaleString('en-US')} events per load (${SECONDS} s of ${DEVICES} devices: 80 % inference logs, 20 % heartbeats, 4 groups, a 10 % canary on v2), published in batches of ${PUBLISH_BATCH}; each load timed from its first publish to its last event counted`,
      `the release view covered ${view.canary.slis.inferences} canary inferences from ${view.canary.devicesReporting} devices against baseline v${view.baseline?.version ?? '-'} (${view.baseline?.devicesReporting ?? 0} devices)`,
      `target: >= ${DEVICES.toLocaleString('en-US')} events/s (the fleet's rate); previous attempt with a transaction per event: 5.7k/s`,
      gc ? 'memory measured with --expose-gc' : 'memory measured without --expose-gc: approximate',
    ],
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
