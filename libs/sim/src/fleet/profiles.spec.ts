import { describe, expect, it } from 'vitest';
import { SimRandom } from '../random.js';
import {
  checkNetworkProfile,
  DEVICE_CLASSES,
  NETWORK_PROFILES,
  NetworkShaper,
  type NetworkProfile,
  offlineSpells,
  slowTraining,
} from './profiles.js';

/** A shaper whose waits are recorded instead of slept. */
function shaper(profile: NetworkProfile = NETWORK_PROFILES['3g'], seed = 1) {
  const waits: number[] = [];
  const s = new NetworkShaper(profile, new SimRandom(seed), async (ms) => void waits.push(ms));
  return { s, waits };
}

describe('network profiles', () => {
  it('delays a message by latency + jitter + size / bandwidth', () => {
    const { s } = shaper({ ...NETWORK_PROFILES['3g'], jitterMs: 0 });
    expect(s.delayMs(0)).toBe(120);
    expect(s.delayMs(200_000)).toBeCloseTo(1120, 9);
    const { s: j } = shaper();
    for (let i = 0; i < 100; i++) {
      const d = j.delayMs(0);
      expect(d).toBeGreaterThanOrEqual(120);
      expect(d).toBeLessThan(180);
    }
  });

  it('loses about lossRate of the MQTT publishes (a clear transport error), waits before each one', async () => {
    const { s, waits } = shaper({ ...NETWORK_PROFILES['3g'], lossRate: 0.2 });
    let lost = 0;
    for (let i = 0; i < 2000; i++)
      await s.beforePublish('t', 100).catch((e: Error) => {
        expect(e.message).toMatch(/message lost/);
        lost++;
      });
    expect(lost).toBe(s.stats.lostMessages);
    expect(lost / 2000).toBeGreaterThan(0.17);
    expect(lost / 2000).toBeLessThan(0.23);
    expect(waits).toHaveLength(2000);
  });

  it('wraps fetch: waits for the request and the declared response size, fails lost and offline requests', async () => {
    const { s, waits } = shaper({ ...NETWORK_PROFILES['3g'], jitterMs: 0, lossRate: 0 });
    const calls: string[] = [];
    const inner = (async (input: string | URL | Request) => {
      calls.push(String(input));
      return new Response(new Uint8Array(100_000), { headers: { 'content-length': '100000' } });
    }) as typeof fetch;
    const f = s.fetch(inner);
    const res = await f('http://registry/x');
    expect((await res.arrayBuffer()).byteLength).toBe(100_000);
    expect(calls).toEqual(['http://registry/x']);
    expect(waits).toEqual([120, 500]);
    s.offline = true;
    await expect(f('http://registry/y')).rejects.toThrow(/offline/);
    await expect(s.beforePublish('t', 1)).rejects.toThrow(/offline/);
    expect(calls).toHaveLength(1);
    const lossy = shaper({ ...NETWORK_PROFILES['3g'], lossRate: 0.999_999 }).s.fetch(inner);
    await expect(lossy('http://registry/z')).rejects.toThrow(/request lost/);
  });

  it('draws offline spells from the seed: alternating, inside the horizon, mean lengths near the profile', () => {
    const p = NETWORK_PROFILES.flaky;
    const spells = offlineSpells(p, new SimRandom(3), 3_600_000 * 50);
    expect(spells).toEqual(offlineSpells(p, new SimRandom(3), 3_600_000 * 50));
    for (let i = 0; i < spells.length; i++) {
      expect(spells[i]![1]).toBeGreaterThan(spells[i]![0]);
      if (i > 0) expect(spells[i]![0]).toBeGreaterThan(spells[i - 1]![1]);
    }
    const meanOff = spells.reduce((a, [s, e]) => a + e - s, 0) / spells.length;
    expect(meanOff).toBeGreaterThan(8_000);
    expect(meanOff).toBeLessThan(12_000);
    expect(offlineSpells(NETWORK_PROFILES.lan, new SimRandom(3), 1e9)).toEqual([]);
  });

  it('refuses impossible profiles and CPU speeds, naming the field', () => {
    expect(() => checkNetworkProfile({ ...NETWORK_PROFILES.wifi, lossRate: 1 })).toThrow(/lossRate/);
    expect(() => checkNetworkProfile({ ...NETWORK_PROFILES.wifi, bandwidthBytesPerSecond: 0 })).toThrow(
      /bandwidth/,
    );
    expect(() => slowTraining(0)).toThrow(/cpuSpeed/);
    expect(DEVICE_CLASSES.sensor.cpuSpeed).toBeLessThan(DEVICE_CLASSES.phone.cpuSpeed);
  });

  it('slow training runs the inner transform first and stops waiting when the round aborts', async () => {
    const abort = new AbortController();
    const t = slowTraining(0.001, (u) => u.map((l) => l.map((v) => -v)));
    const pending = t([Float32Array.of(2)], { trainingMs: 1000, signal: abort.signal } as never);
    abort.abort();
    expect([...(await pending)[0]!]).toEqual([-2]);
  });
});
