import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { eventually, freePort, tempDir } from '@edgefl/testing';
import { parseDuration } from '../src/commands/rounds.js';
import { workspaceRoot } from './cli-process.js';
import { runInProcess } from './run-in-process.js';

const MAIN = join(workspaceRoot, 'services/aggregator/dist/main.js');
const TOKEN = 'cli-rounds-tests-admin-token';
const built = existsSync(MAIN);
if (!built) console.warn(`SKIPPED edgefl rounds e2e: the aggregator is not built (npm run build)`);

describe('parseDuration', () => {
  it('reads ms, s, m, h and refuses anything else', () => {
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(() => parseDuration('soon')).toThrow(/duration/);
  });
});

describe.skipIf(!built)('edgefl rounds start|list|show|cancel against a real aggregator', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let registry: Server;
  let aggregator: ChildProcess;
  let url: string;
  const rounds = (...args: string[]) => runInProcess(['rounds', ...args, '--url', url, '--token', TOKEN]);

  beforeAll(async () => {
    dir = await tempDir('edgefl-cli-rounds-');
    // plays the registry's artifact route for the base version
    const onnx = Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 1)));
    registry = createServer((req, res) => {
      res.writeHead(req.url === '/v1/models/fraud/versions/1/artifact' ? 200 : 404);
      res.end(req.url === '/v1/models/fraud/versions/1/artifact' ? onnx : undefined);
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    aggregator = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env['PATH'],
        HOST: '127.0.0.1',
        PORT: String(port),
        EDGEFL_DATA_DIR: dir.path,
        LOG_LEVEL: 'warn',
        AGGREGATOR_ADMIN_TOKEN: TOKEN,
        AGGREGATOR_REGISTRY_URL: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`,
      },
      stdio: 'ignore',
    });
    await eventually(
      'aggregator ready',
      async () => (await fetch(`${url}/health/ready`).catch(() => null))?.ok,
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    aggregator?.kill('SIGTERM');
    await new Promise((r) => registry?.close(r));
    await dir?.remove();
  });

  it('opens, lists, shows and cancels a round; bad settings and a missing token exit 2 with the reason', async () => {
    const start = await rounds(
      'start',
      '--tenant',
      'acme',
      '--model',
      'fraud',
      '--base-version',
      '1',
      '--devices',
      'd1,d2,d3',
      '--quorum',
      '2',
      '--deadline',
      '10m',
      '--round-id',
      'cli-round-1',
    );
    expect(start.stderr).toBe('');
    expect(start.stdout).toMatch(/opened round cli-round-1/);
    expect(start.code).toBe(0);

    const list = await rounds('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/cli-round-1.*acme.*fraud.*OPEN.*2\/3.*fedavg/);
    const json = await rounds('list', '--json');
    expect((JSON.parse(json.stdout) as Array<{ roundId: string }>).map((r) => r.roundId)).toEqual([
      'cli-round-1',
    ]);

    const show = await rounds('show', 'cli-round-1');
    expect(show.stdout).toMatch(/0 received, 0 accepted, 0 rejected/);
    expect(show.stdout).toMatch(/dropouts.*d1, d2, d3/);

    const cancel = await rounds('cancel', 'cli-round-1');
    expect(cancel.stdout).toMatch(/cancelled round cli-round-1/);
    const again = await rounds('cancel', 'cli-round-1');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/409 Conflict \(round-not-open\)/);

    const impossible = await rounds(
      'start',
      '--tenant',
      'acme',
      '--model',
      'fraud',
      '--base-version',
      '1',
      '--devices',
      'd1',
      '--quorum',
      '3',
    );
    expect(impossible.code).toBe(2);
    expect(impossible.stderr).toMatch(/400 Bad Request \(quorum-above-selection\)/);
    expect((await rounds('show', 'nope')).stderr).toMatch(/404 Not Found \(unknown-round\)/);
    const noToken = await runInProcess(['rounds', 'list', '--url', url, '--token', 'wrong-token-123456789']);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/401/);
  }, 60_000);
});
