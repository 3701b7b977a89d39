import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Outbox } from './outbox.js';
import { SyncScheduler, type SyncConditions } from './sync.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-outbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (budgetBytes = 1 << 20, now = () => 1_000) =>
  new Outbox(join(dir, `b${n++}.sqlite`), { budgetBytes, now });
const bytes = (size: number, fill = 1) => new Uint8Array(size).fill(fill);

describe('offline buffer', () => {
  it('hands out OTA statuses and FL updates first, then telemetry, then inference logs, oldest first, in size-bounded batches', () => {
    const box = fresh();
    box.enqueue('inference-log', 't/log', bytes(10));
    box.enqueue('telemetry', 't/tel', bytes(10));
    box.enqueue('ota-status', 't/ota', bytes(10));
    box.enqueue('fl-update', 't/fl', bytes(10));
    box.enqueue('hard-sample', null, bytes(10));
    const all = box.nextBatch(1 << 20, 100);
    expect(all.map((r) => r.kind)).toEqual(['ota-status', 'fl-update', 'telemetry', 'inference-log']);
    expect(box.nextBatch(25, 100).map((r) => r.kind)).toEqual(['ota-status', 'fl-update']);
    expect(box.nextBatch(1, 100)).toHaveLength(1); // at least one record, whatever its size
    box.close();
  });

  it('marks a record sent only when told (after the PUBACK), and keeps everything across a restart', () => {
    const path = join(dir, 'restart.sqlite');
    const a = new Outbox(path);
    a.enqueue('ota-status', 't/ota', bytes(5));
    a.enqueue('telemetry', 't/tel', bytes(5));
    const batch = a.nextBatch(1 << 20, 100);
    a.markSent(batch.slice(0, 1));
    a.close();
    const b = new Outbox(path);
    expect(b.nextBatch(1 << 20, 100).map((r) => r.kind)).toEqual(['telemetry']);
    expect(b.stats().sent['ota-status']).toBe(1);
    b.close();
  });

  it('evicts oldest low-priority records first to stay in budget, never unsent OTA statuses, and counts what it evicted', () => {
    const box = fresh(100);
    box.enqueue('ota-status', 't/ota', bytes(40));
    box.enqueue('inference-log', 't/log', bytes(20, 1));
    box.enqueue('telemetry', 't/tel', bytes(20));
    box.enqueue('inference-log', 't/log', bytes(20, 2));
    // 100 used; one more telemetry record evicts the oldest inference log, not the telemetry or the OTA status
    expect(box.enqueue('telemetry', 't/tel', bytes(20))).not.toBeNull();
    let stats = box.stats();
    expect(stats.pending).toMatchObject({ 'ota-status': 1, telemetry: 2, 'inference-log': 1 });
    expect(stats.evicted['inference-log']).toBe(1);
    expect(box.list('inference-log')[0]!.payload[0]).toBe(2);
    // a log cannot push out telemetry: it is refused and counted
    box.enqueue('inference-log', 't/log', bytes(20, 3));
    expect(box.enqueue('inference-log', 't/log', bytes(30))).toBeNull();
    // OTA statuses push everything else out and are kept even past the budget
    expect(box.enqueue('ota-status', 't/ota', bytes(90))).not.toBeNull();
    stats = box.stats();
    expect(stats.pending['ota-status']).toBe(2);
    expect(stats.pending.telemetry + stats.pending['inference-log']).toBe(0);
    expect(stats.evicted.telemetry).toBe(2);
    box.close();
  });

  it('stores a batch of inference logs in one transaction, within the budget', () => {
    const box = fresh(50);
    expect(
      box.enqueueMany(
        'inference-log',
        Array.from({ length: 8 }, () => ({ topic: 't/log', payload: bytes(10) })),
      ),
    ).toBe(8);
    expect(box.stats().pending['inference-log']).toBe(5);
    expect(box.stats().evicted['inference-log']).toBe(3);
    box.close();
  });

  it('drops FL updates whose deadline passed and counts them', () => {
    let now = 1_000;
    const box = fresh(1 << 20, () => now);
    box.enqueue('fl-update', 't/fl', bytes(5), { expiresAt: 2_000 });
    now = 2_500;
    expect(box.nextBatch(1 << 20, 10)).toHaveLength(0);
    expect(box.stats().expired['fl-update']).toBe(1);
    box.close();
  });
});

describe('sync strategies', () => {
  const conditions =
    (c: Partial<SyncConditions> = {}) =>
    () => ({
      connected: true,
      networkType: 'WIFI' as const,
      batteryPercent: 80,
      charging: false,
      ...c,
    });

  it('opportunistic: telemetry and logs only on Wi-Fi with battery; OTA and FL always', async () => {
    const box = fresh();
    let c = conditions({ networkType: 'CELLULAR_4G' });
    const sent: string[] = [];
    const sync = new SyncScheduler(box, {
      strategy: 'opportunistic',
      conditions: () => c(),
      publish: async (t) => void sent.push(t),
    });
    box.enqueue('telemetry', 't/tel', bytes(5));
    box.enqueue('ota-status', 't/ota', bytes(5));
    expect(await sync.flush()).toBe(1);
    expect(sent).toEqual(['t/ota']);
    c = conditions({ networkType: 'WIFI', batteryPercent: 10, charging: false });
    expect(await sync.flush()).toBe(0);
    c = conditions({ networkType: 'WIFI', batteryPercent: 10, charging: true });
    expect(await sync.flush()).toBe(1);
    box.close();
  });

  it('keeps records whose publish failed (no PUBACK) for the next pass', async () => {
    const box = fresh();
    let fail = true;
    const sync = new SyncScheduler(box, {
      strategy: 'periodic',
      conditions: conditions(),
      publish: async () => {
        if (fail) throw new Error('connection lost');
      },
    });
    box.enqueue('ota-status', 't/ota', bytes(5));
    expect(await sync.flush()).toBe(0);
    expect(box.stats().pending['ota-status']).toBe(1);
    fail = false;
    expect(await sync.flush()).toBe(1);
    expect(box.stats().pending['ota-status']).toBe(0);
    box.close();
  });

  it('adaptive: shorter interval under a backlog, longer on cellular, low battery and after failures', async () => {
    const box = fresh();
    let c = conditions();
    const sync = new SyncScheduler(box, {
      strategy: 'adaptive',
      intervalMs: 8_000,
      conditions: () => c(),
      publish: async () => {
        throw new Error('down');
      },
    });
    expect(sync.nextIntervalMs()).toBe(8_000);
    for (let i = 0; i < 150; i++) box.enqueue('telemetry', 't/tel', bytes(1));
    expect(sync.nextIntervalMs()).toBe(4_000);
    c = conditions({ networkType: 'CELLULAR_4G', batteryPercent: 5 });
    expect(sync.nextIntervalMs()).toBe(16_000);
    await sync.flush();
    expect(sync.nextIntervalMs()).toBe(32_000);
    box.close();
  });
});
