import { describe, expect, it } from 'vitest';
import { SERVICES, up, type ServiceName } from '../src/commands/up.js';

/** Services that only record what happens to them (no Nest app, no ports). */
function fakeStack(options: { failBoot?: ServiceName; failClose?: ServiceName } = {}) {
  const closed: string[] = [];
  const load = async (name: ServiceName) => async () => {
    if (name === options.failBoot) throw new Error(`${name} cannot boot`);
    return {
      url: `http://127.0.0.1/${name}`,
      close: async () => {
        closed.push(name);
        if (name === options.failClose) throw new Error(`${name} close failed`);
      },
    };
  };
  return { closed, load };
}

describe('edgefl up (in process)', () => {
  it('stops every service once, newest first, however often stop is called', async () => {
    const { closed, load } = fakeStack();
    const stack = await up({ load, log: () => undefined });
    await Promise.all([stack.stop(), stack.stop()]);
    await stack.stop();
    expect(closed).toEqual([...SERVICES].reverse());
  });

  it('stops the other services when one fails to close, then reports the failure', async () => {
    const { closed, load } = fakeStack({ failClose: 'telemetry' });
    const stack = await up({ load, log: () => undefined });
    await expect(stack.stop()).rejects.toThrow(/telemetry close failed/);
    expect(closed).toEqual([...SERVICES].reverse());
  });

  it('on a boot failure stops what started and reports the boot error, not a close error', async () => {
    const { closed, load } = fakeStack({ failBoot: 'inference', failClose: 'aggregator' });
    await expect(up({ load, log: () => undefined })).rejects.toThrow(/inference cannot boot/);
    expect(closed).toEqual(['telemetry', 'aggregator', 'registry']);
  });
});
