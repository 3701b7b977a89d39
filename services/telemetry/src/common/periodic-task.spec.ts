import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PeriodicTask } from './periodic-task.js';

describe('PeriodicTask', () => {
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });

  it('runs one at a time: a tick during a run waits for it and returns idle', async () => {
    let release!: () => void;
    let runs = 0;
    const task = new PeriodicTask(
      'job',
      async () => {
        runs++;
        await new Promise<void>((r) => (release = r));
        return 7;
      },
      0,
      logger,
    );
    const first = task.tick();
    const second = task.tick();
    release();
    expect(await first).toBe(7);
    expect(await second).toBe(0);
    expect(runs).toBe(1);
  });

  it('logs a failed run, returns idle, and runs again at the next tick', async () => {
    let calls = 0;
    const task = new PeriodicTask(
      'flaky job',
      async () => {
        if (++calls === 1) throw new Error('boom');
        return 'ok';
      },
      'idle',
      logger,
    );
    expect(await task.tick()).toBe('idle');
    expect(logged.some((l) => l.includes('flaky job failed; retried at the next tick'))).toBe(true);
    expect(await task.tick()).toBe('ok');
    await task.stop();
  });
});
