import { readFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

/** Where the aggregator is and how to authenticate (flags first, then AGGREGATOR_URL / AGGREGATOR_ADMIN_TOKEN). */
interface Connection {
  url?: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

interface RoundView {
  roundId: string;
  tenant: string;
  modelId: string;
  state: string;
  settings: {
    baseVersion: number;
    quorum: number;
    deadline: number;
    strategy: string;
    selectedDevices: string[];
  };
  closeReason: string | null;
  closeDetail: string | null;
  epsilon: number;
  epsilonTotal: number;
  result: { participants: string[]; sha256: string; sizeBytes: number; uri: string | null } | null;
}

interface Report {
  counts: { received: number; accepted: number; rejected: number };
  participants: string[];
  dropouts: string[];
  outliers: string[];
  rejections: Array<{ deviceId: string; reason: string; detail: string }>;
}

function connection(opts: Connection): { url: string; token: string } {
  const url = opts.url ?? process.env['AGGREGATOR_URL'] ?? 'http://127.0.0.1:7103';
  let token = opts.token ?? process.env['AGGREGATOR_ADMIN_TOKEN'];
  if (opts.tokenFile) {
    try {
      token = readFileSync(opts.tokenFile, 'utf8').trim();
    } catch (error) {
      throw new UsageError(`--token-file ${opts.tokenFile}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (!token)
    throw new UsageError(
      'the rounds API needs the admin token: --token, --token-file or AGGREGATOR_ADMIN_TOKEN',
    );
  return { url: url.replace(/\/+$/, ''), token };
}

/** One API call; a problem+json answer becomes a one-line UsageError (4xx) or Error (5xx) naming the reason. */
async function api<T>(opts: Connection, method: string, path: string, body?: unknown): Promise<T> {
  const { url, token } = connection(opts);
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new Error(`the aggregator at ${url} is unreachable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const code = typeof parsed['code'] === 'string' ? ` (${parsed['code']})` : '';
    const message = `${res.status} ${String(parsed['title'] ?? '')}${code}: ${String(parsed['detail'] ?? text)}`;
    if (res.status < 500) throw new UsageError(message);
    throw new Error(message);
  }
  return parsed as T;
}

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const table = (head: string[], rows: Array<Array<string | number>>) => {
  const t = new Table({ head, style: { head: [], border: [] } });
  t.push(...rows.map((r) => r.map(String)));
  return t.toString();
};
const when = (ms: number) => new Date(ms).toISOString();

function parseNumber(value: string, name: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

/** `--param f=1 --param m=5` → { f: 1, m: 5 } */
function parseParams(values: string[]): Record<string, number> {
  return Object.fromEntries(
    values.map((v) => {
      const [k, n] = v.split('=');
      if (!k || n === undefined) throw new UsageError(`--param must be name=number, got '${v}'`);
      return [k, parseNumber(n, `param ${k}`)];
    }),
  );
}

/** A duration like 30s, 10m, 2h or plain milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`a duration is a number with ms, s, m or h, got '${value}'`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

interface StartOptions extends Connection {
  tenant: string;
  model: string;
  baseVersion: string;
  devices: string;
  quorum: string;
  deadline: string;
  grace: string;
  strategy: string;
  param: string[];
  dp: string;
  clipNorm?: string;
  noise?: string;
  samplingRate?: string;
  maxNorm?: string;
  roundId?: string;
}

const withConnection = (cmd: Command) =>
  cmd
    .option('--url <url>', 'aggregator base URL (default AGGREGATOR_URL or http://127.0.0.1:7103)')
    .option('--token <token>', 'admin token (default AGGREGATOR_ADMIN_TOKEN)')
    .option('--token-file <file>', 'read the admin token from this file')
    .option('--json', 'print the API answer as JSON');

export function register(program: Command): void {
  const rounds = program.command('rounds').description('federated-learning rounds on the aggregator');

  withConnection(rounds.command('start'))
    .description('open a round; prints its id')
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--model <model>', 'model id')
    .requiredOption('--base-version <n>', 'base version devices train from')
    .requiredOption('--devices <ids>', 'selected device ids, comma-separated')
    .requiredOption(
      '--quorum <q>',
      'accepted updates needed: a count, or a fraction below 1 of the selection',
    )
    .option('--deadline <duration>', 'time from now until the deadline (30s, 10m, 2h)', '10m')
    .option('--grace <duration>', 'wait after the quorum for late updates', '0')
    .option(
      '--strategy <name>',
      'fedavg, median, trimmed-mean, krum, multi-krum, bulyan, centered-clipping',
      'fedavg',
    )
    .option(
      '--param <name=value>',
      'strategy parameter (repeatable: f=1, m=5, beta=0.1)',
      (v, all: string[]) => [...all, v],
      [],
    )
    .option('--dp <mode>', 'none, central or local', 'none')
    .option('--clip-norm <c>', 'DP clipping norm')
    .option('--noise <sigma>', 'DP noise multiplier')
    .option('--sampling-rate <q>', 'client sampling rate for the accountant')
    .option('--max-norm <n>', 'reject updates with a larger L2 norm')
    .option('--round-id <id>', 'the round id (default: generated)')
    .action(async (opts: StartOptions) => {
      const selectedDevices = opts.devices
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean);
      const body = {
        ...(opts.roundId ? { roundId: opts.roundId } : {}),
        tenant: opts.tenant,
        modelId: opts.model,
        baseVersion: parseNumber(opts.baseVersion, 'base-version'),
        selectedDevices,
        quorum: parseNumber(opts.quorum, 'quorum'),
        deadline: Date.now() + parseDuration(opts.deadline),
        graceMs: parseDuration(opts.grace),
        strategy: opts.strategy,
        strategyParams: parseParams(opts.param),
        dp: {
          mode: opts.dp,
          ...(opts.clipNorm ? { clipNorm: parseNumber(opts.clipNorm, 'clip-norm') } : {}),
          ...(opts.noise ? { noiseMultiplier: parseNumber(opts.noise, 'noise') } : {}),
          ...(opts.samplingRate ? { samplingRate: parseNumber(opts.samplingRate, 'sampling-rate') } : {}),
        },
        ...(opts.maxNorm ? { maxNorm: parseNumber(opts.maxNorm, 'max-norm') } : {}),
      };
      const round = await api<RoundView>(opts, 'POST', '/v1/rounds', body);
      print(
        opts.json
          ? JSON.stringify(round, null, 2)
          : `opened round ${round.roundId} (ε ${round.epsilon.toFixed(4)})`,
      );
    });

  withConnection(rounds.command('list'))
    .description('rounds, newest first')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--model <model>', 'only this model')
    .option('--state <state>', 'OPEN, CLOSED, AGGREGATED, DONE, CANCELLED or FAILED')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: Connection & { tenant?: string; model?: string; state?: string; limit: string }) => {
      const q = new URLSearchParams({ limit: opts.limit });
      if (opts.tenant) q.set('tenant', opts.tenant);
      if (opts.model) q.set('modelId', opts.model);
      if (opts.state) q.set('state', opts.state.toUpperCase());
      const { rounds: list } = await api<{ rounds: RoundView[] }>(opts, 'GET', `/v1/rounds?${q}`);
      if (opts.json) return print(JSON.stringify(list, null, 2));
      print(
        table(
          ['round', 'tenant', 'model', 'base', 'state', 'quorum', 'strategy', 'deadline', 'ε'],
          list.map((r) => [
            r.roundId,
            r.tenant,
            r.modelId,
            r.settings.baseVersion,
            r.state,
            `${r.settings.quorum}/${r.settings.selectedDevices.length}`,
            r.settings.strategy,
            when(r.settings.deadline),
            r.epsilon.toFixed(4),
          ]),
        ),
      );
    });

  withConnection(rounds.command('show'))
    .description('one round and its report (participants, dropouts, rejections with reasons, outliers)')
    .argument('<round>', 'round id')
    .action(async (roundId: string, opts: Connection) => {
      const id = encodeURIComponent(roundId);
      const round = await api<RoundView>(opts, 'GET', `/v1/rounds/${id}`);
      const report = await api<Report>(opts, 'GET', `/v1/rounds/${id}/report`);
      if (opts.json) return print(JSON.stringify({ round, report }, null, 2));
      const c = report.counts;
      print(
        table(
          ['field', 'value'],
          [
            ['round', round.roundId],
            ['model', `${round.tenant}/${round.modelId} v${round.settings.baseVersion}`],
            ['state', `${round.state}${round.closeReason ? ` (${round.closeReason})` : ''}`],
            ['updates', `${c.received} received, ${c.accepted} accepted, ${c.rejected} rejected`],
            ['participants', report.participants.join(', ') || '-'],
            ['dropouts', report.dropouts.join(', ') || '-'],
            ['outliers', report.outliers.join(', ') || '-'],
            ['ε (round / total)', `${round.epsilon.toFixed(4)} / ${round.epsilonTotal.toFixed(4)}`],
            [
              'result',
              round.result ? `${round.result.sha256.slice(0, 16)}… ${round.result.sizeBytes} B` : '-',
            ],
            ...(round.closeDetail ? [['detail', round.closeDetail]] : []),
          ],
        ),
      );
      if (report.rejections.length > 0)
        print(
          table(
            ['device', 'rejected because', 'detail'],
            report.rejections.map((r) => [r.deviceId, r.reason, r.detail]),
          ),
        );
    });

  withConnection(rounds.command('cancel'))
    .description('cancel an open round')
    .argument('<round>', 'round id')
    .action(async (roundId: string, opts: Connection) => {
      const round = await api<RoundView>(opts, 'POST', `/v1/rounds/${encodeURIComponent(roundId)}/cancel`);
      print(opts.json ? JSON.stringify(round, null, 2) : `cancelled round ${round.roundId}`);
    });
}
