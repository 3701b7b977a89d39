import { describe, expect, it } from 'vitest';
import { ReadinessRegistry } from './readiness.js';

describe('readiness registry', () => {
  it('runs every check; a throwing or silent check is not ready', async () => {
    const registry = new ReadinessRegistry();
    registry.register('bus', () => ({ ready: true }));
    registry.register('keys', () => {
      throw new Error('keyring unreadable');
    });
    registry.register('slow', () => new Promise(() => undefined));
    const results = await registry.run(50);
    expect(results['bus']).toEqual({ ready: true });
    expect(results['keys']).toEqual({ ready: false, detail: 'keyring unreadable' });
    expect(results['slow']).toEqual({ ready: false, detail: 'no answer within 50 ms' });
  });

  it('refuses a second check under the same name and remembers draining', () => {
    const registry = new ReadinessRegistry();
    registry.register('bus', () => ({ ready: true }));
    expect(() => registry.register('bus', () => ({ ready: true }))).toThrow(/twice/);
    expect(registry.draining).toBe(false);
    registry.markDraining();
    expect(registry.draining).toBe(true);
  });
});
