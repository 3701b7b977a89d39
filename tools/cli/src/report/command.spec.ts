import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../../test/run-in-process.js';
import { realisticSummary, REALISTIC_SUMMARY_PATH } from './fixtures/summaries.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-report-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixture = fileURLToPath(REALISTIC_SUMMARY_PATH);

describe('edgefl report', () => {
  it('renders a saved summary into a self-contained HTML file', async () => {
    const out = join(dir, 'report.html');
    const { code, stdout, stderr } = await runInProcess(['report', '--in', fixture, '--out', out]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^report written to .*report\.html \(\d+ KiB\)\n$/);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('91.7% test accuracy');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('exits 2 with one line naming the bad field, and writes nothing', async () => {
    const bad = realisticSummary() as unknown as { rounds: Record<string, unknown>[] };
    bad.rounds[7]!['participants'] = 'many';
    const input = join(dir, 'bad.json');
    writeFileSync(input, JSON.stringify(bad));
    const out = join(dir, 'bad.html');
    const { code, stderr } = await runInProcess(['report', '--in', input, '--out', out]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^edgefl: .*bad\.json: rounds\[7\]\.participants: .*expected number.*\n$/);
    expect(stderr.split('\n')).toHaveLength(2);
    expect(existsSync(out)).toBe(false);
  });

  it('exits 2 for a missing summary, a missing flag and an output directory that does not exist', async () => {
    const missing = await runInProcess([
      'report',
      '--in',
      join(dir, 'nope.json'),
      '--out',
      join(dir, 'x.html'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^edgefl: cannot read the summary .*nope\.json: no such file\n$/);

    const noOut = await runInProcess(['report', '--in', fixture]);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/required option '--out <report\.html>' not specified/);

    const noDir = await runInProcess(['report', '--in', fixture, '--out', join(dir, 'no', 'such', 'r.html')]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(
      /^edgefl: cannot write the report .*r\.html: the directory .*such does not exist\n$/,
    );

    const copy = join(dir, 'copy.json');
    writeFileSync(copy, readFileSync(fixture));
    const overwrite = await runInProcess(['report', '--in', copy, '--out', copy]);
    expect(overwrite.code).toBe(2);
    expect(overwrite.stderr).toMatch(/^edgefl: --out .*copy\.json is the summary itself/);
    expect(JSON.parse(readFileSync(copy, 'utf8'))).toMatchObject({ format: 'edgefl.demo.summary/v1' });
  });
});
