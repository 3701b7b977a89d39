import { readFileSync } from 'node:fs';
import {
  DeviceError,
  EdgeDevice,
  loadCsvDataset,
  standardize,
  targetsFromLabels,
  type CsvDataset,
  type SyncStrategy,
} from '@edgefl/device-sdk';
import type { ModelSpec } from '@edgefl/model';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

export interface DeviceRunOptions {
  registry: string;
  mqtt?: string;
  tenant: string;
  device: string;
  keyFile: string;
  dataDir: string;
  dataset?: string;
  label?: string;
  once?: boolean;
  model?: string;
  hardwareClass?: string;
  firmware?: string;
  adminTokenFile?: string;
  sync?: string;
  inferIntervalMs?: string;
  heartbeatMs?: string;
  pollMs?: string;
  cloud?: string;
  group?: string;
  featureSummaries?: boolean;
}

/** Bin edges of `--feature-summaries`: the data set's features are standardised, so these are z-scores. */
export const STANDARD_SCORE_EDGES = [-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3];

const STRATEGIES: SyncStrategy[] = ['periodic', 'event-driven', 'opportunistic', 'adaptive'];

function url(value: string, flag: string, schemes: string[]): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new UsageError(`--${flag} must be a URL, got '${value}'`);
  }
  if (!schemes.includes(parsed.protocol))
    throw new UsageError(`--${flag} must be a ${schemes.join(' or ')} URL`);
  return value;
}

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${flag} must be a positive integer, got '${value}'`);
  return n;
}

/** Checks the flags (before anything connects); returns the device options. */
export function deviceOptions(o: DeviceRunOptions): {
  device: ConstructorParameters<typeof EdgeDevice>[0];
  dataset: CsvDataset | null;
  inferIntervalMs: number;
} {
  url(o.registry, 'registry', ['http:', 'https:']);
  if (o.mqtt) url(o.mqtt, 'mqtt', ['mqtt:', 'mqtts:', 'ws:', 'wss:']);
  for (const [flag, value] of [
    ['tenant', o.tenant],
    ['device', o.device],
  ] as const) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(value))
      throw new UsageError(`--${flag} must be 1-128 of [A-Za-z0-9._:-] starting with a letter or digit`);
  }
  if (o.group !== undefined && !/^[\x21-\x7e]{1,128}$/.test(o.group))
    throw new UsageError('--group must be 1-128 printable ASCII characters without spaces');
  if ((o.dataset === undefined) !== (o.label === undefined))
    throw new UsageError('--dataset and --label go together');
  if (o.sync !== undefined && !STRATEGIES.includes(o.sync as SyncStrategy))
    throw new UsageError(`--sync must be one of ${STRATEGIES.join(', ')}`);
  let dataset: CsvDataset | null = null;
  if (o.dataset) {
    try {
      dataset = loadCsvDataset(o.dataset, o.label!);
    } catch (error) {
      if (error instanceof DeviceError) throw new UsageError(error.message);
      throw error;
    }
    standardize(dataset.x, dataset.rows, dataset.features);
  }
  let adminToken: string | undefined = process.env['REGISTRY_ADMIN_TOKEN'] || undefined;
  if (o.adminTokenFile) {
    try {
      adminToken = readFileSync(o.adminTokenFile, 'utf8').trim();
    } catch (error) {
      throw new UsageError(
        `cannot read --admin-token-file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  const data = dataset;
  return {
    dataset,
    inferIntervalMs: positive(o.inferIntervalMs, 'infer-interval-ms', 1_000),
    device: {
      registryUrl: o.registry,
      ...(o.mqtt ? { mqttUrl: o.mqtt } : {}),
      tenant: o.tenant,
      deviceId: o.device,
      keyFile: o.keyFile,
      dataDir: o.dataDir,
      ...(o.model ? { modelId: o.model } : {}),
      ...(o.group !== undefined ? { group: o.group } : {}),
      ...(o.featureSummaries ? { featureSummaries: { binEdges: STANDARD_SCORE_EDGES } } : {}),
      hardware: {
        ...(o.hardwareClass ? { class: o.hardwareClass } : {}),
        ...(o.firmware ? { firmware: o.firmware } : {}),
      },
      ...(adminToken ? { adminToken } : {}),
      ...(data
        ? {
            data: (spec: ModelSpec) =>
              spec.inputs === data.features
                ? {
                    features: data.features,
                    rows: data.rows,
                    x: data.x,
                    y: targetsFromLabels(spec, data.labels),
                  }
                : null,
          }
        : {}),
      sync: { strategy: (o.sync as SyncStrategy | undefined) ?? 'adaptive' },
      heartbeatIntervalMs: positive(o.heartbeatMs, 'heartbeat-ms', 30_000),
      pollIntervalMs: positive(o.pollMs, 'poll-ms', 60_000),
      inference: { cloud: o.cloud ?? (o.mqtt ? 'mqtt' : 'none') },
      log: (line: string) => process.stderr.write(`edgefl device ${o.device}: ${line}\n`),
    },
  };
}

/** `edgefl device run`: returns the exit code (0 ACTIVE for --once, 1 with the reason otherwise). */
export async function runDevice(
  o: DeviceRunOptions,
  stop: AbortSignal = new AbortController().signal,
): Promise<number> {
  const { device: options, dataset, inferIntervalMs } = deviceOptions(o);
  const device = new EdgeDevice(options);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  try {
    if (o.once) {
      const outcome = await device.once();
      if (outcome.state === 'ACTIVE') {
        say(
          `ACTIVE ${device.modelId} v${outcome.version}${outcome.changed ? ` (${outcome.viaDelta ? 'delta' : 'full'}, ${outcome.bytesDownloaded} bytes)` : ' (already installed)'}`,
        );
        return 0;
      }
      process.stderr.write(
        `edgefl device ${o.device}: ${outcome.state === 'FAILED' ? `FAILED ${outcome.code}: ${outcome.message}` : `nothing to install: ${outcome.reason}`}\n`,
      );
      return 1;
    }
    await device.start();
    say(`running ${o.device} (tenant ${o.tenant}, model ${device.modelId}); Ctrl-C stops`);
    let row = 0;
    while (!stop.aborted) {
      if (dataset && device.runner.current?.spec.inputs === dataset.features) {
        const input = dataset.x.subarray(row * dataset.features, (row + 1) * dataset.features);
        const p = await device.predict(input).catch((error: Error) => {
          process.stderr.write(`edgefl device ${o.device}: inference failed: ${error.message}\n`);
          return null;
        });
        if (p)
          say(
            JSON.stringify({
              row,
              label: p.label,
              truth: dataset.labels[row],
              confidence: Number(p.confidence.toFixed(4)),
              source: p.source,
              version: p.modelVersion,
            }),
          );
        row = (row + 1) % dataset.rows;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, inferIntervalMs);
        stop.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
    return 0;
  } catch (error) {
    if (error instanceof DeviceError) {
      process.stderr.write(`edgefl device ${o.device}: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await device.stop();
  }
}

export function register(program: Command): void {
  const device = program.command('device').description('run an edge device (the libs/device-sdk runtime)');
  device
    .command('run')
    .description(
      'provision (or reuse) a device identity, connect, and run OTA, inference on the data set rows, heartbeats and federated rounds until stopped',
    )
    .requiredOption('--registry <url>', 'registry base URL')
    .option('--mqtt <url>', 'gateway MQTT URL (mqtt://host:port); without it the device runs over HTTP only')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--device <id>', 'device id')
    .requiredOption('--key-file <path>', 'Ed25519 key (PKCS#8 PEM, 0600); created when missing')
    .requiredOption('--data-dir <dir>', 'where models, pinned keys and the offline buffer live')
    .option('--dataset <csv>', 'local data (numeric features and a label column; .gz allowed)')
    .option('--label <column>', 'label column: a header name or a column index (negative from the end)')
    .option('--once', 'apply the current release and exit: 0 when ACTIVE, non-zero with the reason otherwise')
    .option('--model <id>', 'model id (default: the one the registry assigns)')
    .option('--hardware-class <class>', 'hardware class (checked against release manifests)')
    .option('--firmware <version>', 'firmware version reported in heartbeats')
    .option(
      '--group <label>',
      'device group / cohort label reported in heartbeats (SLIs and rollout cohorts split by it)',
    )
    .option(
      '--feature-summaries',
      'attach per-feature summaries of the rows inferred on to heartbeats (z-score bins -3..3), for drift detection',
    )
    .option(
      '--admin-token-file <path>',
      'registers an unknown device with this management token (or REGISTRY_ADMIN_TOKEN)',
    )
    .option(
      '--sync <strategy>',
      'offline buffer sync: periodic, event-driven, opportunistic, adaptive (default)',
    )
    .option('--infer-interval-ms <n>', 'one data set row through inference every n ms (default 1000)')
    .option('--heartbeat-ms <n>', 'heartbeat interval (default 30000)')
    .option('--poll-ms <n>', 'HTTP manifest poll interval, the fallback to MQTT (default 60000)')
    .option(
      '--cloud <mqtt|none|url>',
      'cloud tier for low-confidence inputs: mqtt (default), none, or an inference service URL (OIP)',
    )
    .action(async (options: DeviceRunOptions) => {
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const code = await runDevice(options, controller.signal);
        if (code !== 0) process.exitCode = code;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
