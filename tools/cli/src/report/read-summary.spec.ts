import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../usage-error.js';
import { emptySummary, realisticSummary, REALISTIC_SUMMARY_PATH } from './fixtures/summaries.js';
import { parseSummary, readSummary } from './read-summary.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-read-summary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problem(value: unknown): string {
  try {
    parseSummary(value, 'run.json');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('the summary was accepted');
}

describe('readSummary', () => {
  it('reads the realistic summary and a summary of a run that did nothing', async () => {
    const summary = await readSummary(fileURLToPath(REALISTIC_SUMMARY_PATH));
    expect(summary.rounds).toHaveLength(10);
    expect(summary.settings.dpEpsilon).toBe(3);
    const file = join(dir, 'empty.json');
    writeFileSync(file, JSON.stringify(emptySummary()));
    expect((await readSummary(file)).rounds).toEqual([]);
  });

  it('keeps reading v1 summaries that carry fields added later (backward compatible), and drops them', () => {
    const s = { ...realisticSummary(), addedLater: { anything: 1 } };
    s.rounds[0] = { ...s.rounds[0]!, ...{ lossPerRound: 0.4 } };
    const parsed = parseSummary(s, 'run.json');
    expect(parsed.rounds[0]!.accuracy).toBe(0.412);
    expect(parsed).not.toHaveProperty('addedLater');
  });

  it('names a missing file, a directory and a file that is not JSON', async () => {
    await expect(readSummary(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: no such file/);
    await expect(readSummary(dir)).rejects.toThrow(/it is a directory/);
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{"format": "edgefl.demo.summary/v1",');
    await expect(readSummary(file)).rejects.toThrow(UsageError);
    await expect(readSummary(file)).rejects.toThrow(/broken\.json is not JSON/);
  });

  it('refuses another format by name before looking at the fields', () => {
    expect(problem([])).toBe('run.json is not an edgefl demo summary: expected a JSON object');
    expect(problem({ ...realisticSummary(), format: 'edgefl.demo.summary/v2' })).toBe(
      'run.json is not an edgefl demo summary: format is "edgefl.demo.summary/v2", expected "edgefl.demo.summary/v1"',
    );
    expect(problem({ rounds: [] })).toMatch(/format is missing/);
  });

  it('names the first bad field by its path, says what was expected and how many more are bad', () => {
    const missing = realisticSummary() as unknown as { rounds: Record<string, unknown>[] };
    delete missing.rounds[2]!['accuracy'];
    expect(problem(missing)).toMatch(/^run\.json: rounds\[2\]\.accuracy: .*expected number/);

    const outOfRange = realisticSummary();
    outOfRange.rounds[4]!.accuracy = 91.7; // a percentage where a fraction belongs
    expect(problem(outOfRange)).toMatch(/^run\.json: rounds\[4\]\.accuracy: .*<=1/);

    const twoBad = realisticSummary();
    (twoBad.settings as { task: string }).task = 'regression';
    twoBad.settings.dpEpsilon = -1;
    const message = problem(twoBad);
    expect(message).toMatch(/^run\.json: settings\.(task|dpEpsilon): /);
    expect(message).toMatch(/\(and 1 more problem\)$/);

    const badOutcome = realisticSummary();
    (badOutcome.releases[1] as { outcome: string }).outcome = 'done';
    expect(problem(badOutcome)).toMatch(/^run\.json: releases\[1\]\.outcome: /);

    const badTime = realisticSummary();
    badTime.releases[0]!.stages[0]!.enteredAt = 'yesterday';
    expect(problem(badTime)).toMatch(/^run\.json: releases\[0\]\.stages\[0\]\.enteredAt: /);

    const badMix = realisticSummary();
    badMix.fleetVersionMix['12'] = 1.5;
    expect(problem(badMix)).toMatch(/^run\.json: fleetVersionMix\.12: /);
  });

  it('checks what the types cannot say: histogram shape, bucket order, round order', () => {
    const counts = realisticSummary();
    counts.latency.edge.counts = [1, 2, 3];
    expect(problem(counts)).toBe(
      'run.json: latency.edge.counts: expected 10 or 11 counts for 10 bounds (got 3)',
    );
    const bounds = realisticSummary();
    bounds.latency.cloud.boundsMs[3] = 0.05;
    expect(problem(bounds)).toBe('run.json: latency.cloud.boundsMs[3]: bucket bounds must increase strictly');
    const order = realisticSummary();
    order.rounds[5]!.round = 3;
    expect(problem(order)).toBe('run.json: rounds[5].round: round numbers must increase');
  });
});
