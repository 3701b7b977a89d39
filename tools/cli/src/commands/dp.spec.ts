import { describe, expect, it } from 'vitest';
import { runInProcess } from '../../test/run-in-process.js';

const run = (args: string[]) => runInProcess(['dp', 'epsilon', ...args]);

const lastNumber = (s: string) => Number(s.trim().split(/\s+/).at(-1));

describe('edgefl dp epsilon', () => {
  it('prints ε (Opacus test case) as the last token, improved and classic', async () => {
    const args = ['--q', '0.04', '--sigma', '1.5', '--steps', '2250', '--delta', '1e-5'];
    const r = await run(args);
    expect(r.code).toBe(0);
    expect(Math.abs(lastNumber(r.stdout) / 7.3291111714386545 - 1)).toBeLessThan(1e-6);
    const c = await run([...args, '--conversion', 'classic']);
    expect(Math.abs(lastNumber(c.stdout) / 8.073848277153212 - 1)).toBeLessThan(1e-6);
  });

  it('accepts an explicit order grid', async () => {
    const r = await run([
      '--q',
      '1',
      '--sigma',
      '1',
      '--steps',
      '1',
      '--delta',
      '1e-5',
      '--orders',
      '2,4,8,16,32',
    ]);
    expect(r.code).toBe(0);
    expect(lastNumber(r.stdout)).toBeGreaterThan(4.7);
  });

  it.each([
    [['--q', '2', '--sigma', '1', '--steps', '1', '--delta', '1e-5']],
    [['--q', '0.1', '--sigma', 'x', '--steps', '1', '--delta', '1e-5']],
    [['--q', '0.1', '--sigma', '1', '--steps', '1.5', '--delta', '1e-5']],
    [['--q', '0.1', '--sigma', '1', '--steps', '1', '--delta', '1']],
    [['--q', '0.1', '--sigma', '1', '--steps', '1', '--delta', '1e-5', '--orders', '0.5,2']],
    [['--q', '0.1', '--sigma', '1', '--steps', '1']],
  ])('bad input → exit 2 (%j)', async (args) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });
});
