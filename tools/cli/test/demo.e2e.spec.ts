import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '@edgefl/testing';
import { DEMO_SUMMARY_FORMAT, type DemoSummary } from '../src/demo/summary.js';
import { buildCli } from './cli-process.js';
import { runCliAsync } from './device-stack.js';

const DEVICES = 20;
const ROUNDS = 3;

/**
 * The whole loop as a user runs it: `edgefl demo` in its own process (stdout a pipe, so the plain-line view), the
 * five services on the embedded stack, 20 virtual devices over MQTT and HTTP, 3 rounds on digits.
 */
describe('npx edgefl demo (20 devices, 3 rounds, digits)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let result: { status: number | null; stdout: string; stderr: string };
  let summary: DemoSummary;

  beforeAll(async () => {
    buildCli();
    dir = await tempDir('edgefl-demo-e2e-');
    result = await runCliAsync(
      [
        'demo',
        '--devices',
        String(DEVICES),
        '--rounds',
        String(ROUNDS),
        '--dataset',
        'digits',
        '--seed',
        '7',
        '--json',
        join(dir.path, 'out', 'summary.json'),
        '--report',
        join(dir.path, 'out', 'report.html'),
        '--data-dir',
        join(dir.path, 'stack'),
      ],
      { LOG_LEVEL: 'info' },
    );
    if (result.status === 0)
      summary = JSON.parse(readFileSync(join(dir.path, 'out', 'summary.json'), 'utf8')) as DemoSummary;
  }, 400_000);
  afterAll(() => dir?.remove());

  it('exits 0 and writes a valid summary', () => {
    expect(result.status, result.stderr.slice(-3000)).toBe(0);
    // the report of the same run: self-contained, naming what ran
    const report = readFileSync(join(dir.path, 'out', 'report.html'), 'utf8');
    expect(report).toMatch(/^<!doctype html>/i);
    expect(report).toContain('digits');
    expect(summary.format).toBe(DEMO_SUMMARY_FORMAT);
    expect(summary.settings).toMatchObject({ devices: DEVICES, rounds: ROUNDS, dataset: 'digits', seed: 7 });
    expect(summary.settings.task).toBe('multiclass');
    expect(summary.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(Date.parse(summary.finishedAt)).toBeGreaterThan(Date.parse(summary.startedAt));
    for (const r of summary.rounds) {
      expect(r.participants).toBe(DEVICES);
      expect(r.rejected).toBe(0);
      expect(r.bytesPerDevice.up).toBeGreaterThan(0);
      expect(r.bytesPerDevice.down).toBeGreaterThan(0);
    }
    expect(summary.baseline.accuracy).toBeGreaterThan(0.9);
    expect(summary.rejectedUpdates).toEqual([]);
  });

  it('improves test accuracy over the rounds', () => {
    const accuracy = summary.rounds.map((r) => r.accuracy);
    expect(accuracy[ROUNDS - 1]!).toBeGreaterThan(accuracy[0]!);
    // ten classes: chance is 10%; three rounds of non-IID FedAvg land well above it
    expect(accuracy[ROUNDS - 1]!).toBeGreaterThan(0.5);
  });

  it('ends with every device on the last released version, after staged releases that completed', () => {
    const versions = summary.rounds.map((r) => r.version);
    expect(versions).toEqual([2, 3, 4]); // v1 is the initial model; each round's result became the next version
    expect(summary.fleetVersionMix).toEqual({ v4: DEVICES });
    expect(summary.releases.map((r) => [r.version, r.outcome])).toEqual([
      [2, 'completed'],
      [3, 'completed'],
      [4, 'completed'],
    ]);
    for (const release of summary.releases) {
      expect(release.stages.map((s) => s.percent)).toEqual([10, 50, 100]);
      // the canary stage advanced only on an install; the last one ends with the whole fleet
      expect(release.stages[0]!.devicesActive).toBeGreaterThanOrEqual(1);
      expect(release.stages[2]!.devicesActive).toBe(DEVICES);
    }
    // after the first install, devices take deltas where the registry offers them
    expect(summary.ota.deltaDownloads).toBeGreaterThan(0);
    expect(summary.ota.deltaBytes + summary.ota.fullBytes).toBeLessThan(summary.ota.fullEquivalentBytes);
  });

  it('counts no update twice: one accepted update per device and round in the aggregator, one version per round', () => {
    const db = new DatabaseSync(join(dir.path, 'stack', 'aggregator.sqlite'), { readOnly: true });
    try {
      for (const r of summary.rounds) {
        const rows = db
          .prepare('SELECT update_id, device_id, verdict FROM round_updates WHERE round_id = ?')
          .all(r.roundId) as Array<{ update_id: string; device_id: string; verdict: string }>;
        const accepted = rows.filter((u) => u.verdict === 'accepted');
        expect(accepted).toHaveLength(DEVICES);
        expect(new Set(accepted.map((u) => u.update_id)).size).toBe(DEVICES);
        expect(new Set(accepted.map((u) => u.device_id)).size).toBe(DEVICES);
        expect(rows.filter((u) => u.verdict !== 'accepted')).toEqual([]);
      }
    } finally {
      db.close();
    }
    const registry = new DatabaseSync(join(dir.path, 'stack', 'registry.sqlite'), { readOnly: true });
    try {
      const fromRounds = registry
        .prepare('SELECT round_id FROM versions WHERE round_id IS NOT NULL')
        .all() as Array<{ round_id: string }>;
      expect(fromRounds.map((v) => v.round_id).sort()).toEqual(summary.rounds.map((r) => r.roundId).sort());
    } finally {
      registry.close();
    }
  });

  it('shows plain lines off a terminal and keeps the service logs in a file under the data dir', () => {
    // eslint-disable-next-line no-control-regex
    expect(result.stdout).not.toMatch(/\x1b\[/);
    expect(result.stdout).toMatch(/^edgefl demo: round 3: 20\/20 updates, accuracy \d+\.\d%/m);
    const logFile = join(dir.path, 'stack', 'services.log');
    expect(result.stdout).toContain(`service logs: ${logFile}`);
    expect(existsSync(logFile)).toBe(true);
    const services = new Set(
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { service?: string }).service),
    );
    expect([...services].sort()).toEqual(['aggregator', 'gateway', 'inference', 'registry', 'telemetry']);
    // nothing of the services' JSON logs reaches the view
    expect(result.stdout).not.toMatch(/"level":/);
  });
});

describe('npx edgefl demo --dp-epsilon (central DP within the budget)', () => {
  it('spends at most ε over the rounds, as the aggregator accounts it', async () => {
    const dir = await tempDir('edgefl-demo-dp-');
    try {
      const json = join(dir.path, 'dp.json');
      const run = await runCliAsync(
        [
          'demo',
          '--devices',
          '5',
          '--rounds',
          '2',
          '--dp-epsilon',
          '3',
          '--json',
          json,
          '--data-dir',
          join(dir.path, 'stack'),
        ],
        {},
      );
      expect(run.status, run.stderr.slice(-3000)).toBe(0);
      const dp = JSON.parse(readFileSync(json, 'utf8')) as DemoSummary;
      expect(dp.settings).toMatchObject({ dpEpsilon: 3, dpDelta: 1e-5 });
      const spent = dp.rounds.map((r) => r.epsilonSpent!);
      expect(spent[0]!).toBeGreaterThan(0);
      expect(spent[1]!).toBeGreaterThan(spent[0]!);
      expect(spent[1]!).toBeLessThanOrEqual(3);
      expect(spent[1]!).toBeGreaterThan(2.9); // σ is calibrated to use the budget, not a fraction of it
    } finally {
      await dir.remove();
    }
  }, 300_000);
});
