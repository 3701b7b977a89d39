// Embedded bus throughput: 1 KB Avro events (edgefl.fl.update.v1, encoded with libs/contracts' TopicCodec in the
// Confluent wire format) published and consumed through a consumer group on the embedded SQLite bus, in one
// process: events/s end to end (first publish to last handler call) and p99 publish->handler latency
// (hdr-histogram-js). Peer, same run, same rows: raw node:sqlite inserts into one table in one transaction.
// Target (issue): >= 50,000 events/s on a 2-core machine.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { EmbeddedBus } from '@edgefl/bus';
import { EmbeddedSchemaRegistry, TopicCodec } from '@edgefl/contracts';
import type { FlUpdate } from '@edgefl/contracts';
import hdr from 'hdr-histogram-js';
import { figure, writeReport } from './lib/report.ts';

const EVENTS = Number(process.env.BUS_BENCH_EVENTS ?? 100_000);
const BATCH = 500;
const TOPIC = 'edgefl.fl.update.v1';
const ROUNDS = 12;

const dir = mkdtempSync(join(tmpdir(), 'edgefl-bus-bench-'));
try {
  // ---- the events: ~1 KB each once encoded ----------------------------------------------------------------------
  const registry = new EmbeddedSchemaRegistry(join(dir, 'registry.sqlite'));
  const codec = new TopicCodec(registry);
  const payload = Buffer.alloc(820, 7);
  const signature = Buffer.alloc(64, 9);
  const records: { topic: string; key: string; value: Buffer; eventId: string; tenant: string }[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const value: FlUpdate = {
      eventId: randomUUID(),
      tenant: 'bench',
      updateId: randomUUID(),
      roundId: `round-${i % ROUNDS}`,
      deviceId: `device-${i}`,
      sampleCount: 100,
      payloadKind: 'SEALED',
      payload,
      signature,
      signingKeyId: 'device-key-1',
      createdAt: Date.now(),
    };
    records.push({
      topic: TOPIC,
      key: value.roundId,
      value: await codec.encode(TOPIC, value),
      eventId: value.eventId,
      tenant: 'bench',
    });
  }
  await registry.close();
  const meanBytes = records.reduce((a, r) => a + r.value.length, 0) / records.length;

  // ---- the bus: publish in batches while one consumer-group member consumes ----------------------------------------
  const bus = new EmbeddedBus({ path: join(dir, 'bus.sqlite'), retentionCheckIntervalMs: 0 });
  await bus.ensureTopics([{ name: TOPIC, partitions: ROUNDS }]);
  const publishedAt = new Float64Array(EVENTS);
  const indexOf = new Map<string, number>(records.map((r, i) => [r.eventId, i]));
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let handled = 0;
  let lastHandledAt = 0;
  let done: () => void = () => {};
  const allHandled = new Promise<void>((resolve) => (done = resolve));
  const sub = await bus.subscribe({
    group: 'bench',
    topics: [TOPIC],
    maxBatchSize: 1_000,
    handler: (r) => {
      const now = performance.now();
      const i = indexOf.get(r.eventId)!;
      latency.recordValue(Math.max(1, Math.round((now - publishedAt[i]!) * 1_000)));
      handled++;
      if (handled === EVENTS) {
        lastHandledAt = now;
        done();
      }
    },
  });
  const start = performance.now();
  for (let i = 0; i < EVENTS; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    const t = performance.now();
    publishedAt.fill(t, i, i + batch.length);
    await bus.publish(batch);
  }
  const publishEnd = performance.now();
  await allHandled;
  const seconds = (lastHandledAt - start) / 1_000;
  const busRate = EVENTS / seconds;
  const publishRate = EVENTS / ((publishEnd - start) / 1_000);
  const p99Ms = latency.getValueAtPercentile(99) / 1_000;
  const p50Ms = latency.getValueAtPercentile(50) / 1_000;
  await sub.close();
  await bus.close();

  // ---- the peer: the same rows inserted raw, one transaction ---------------------------------------------------------
  const raw = new DatabaseSync(join(dir, 'raw.sqlite'));
  raw.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
    CREATE TABLE rows (topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL, rkey TEXT, val BLOB NOT NULL,
      headers TEXT NOT NULL, event_id TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, part, off));`);
  const insert = raw.prepare('INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const rawStart = performance.now();
  raw.exec('BEGIN');
  const offsets = new Array<number>(ROUNDS).fill(0);
  for (let i = 0; i < EVENTS; i++) {
    const r = records[i]!;
    const part = i % ROUNDS;
    insert.run(
      r.topic,
      part,
      offsets[part]!++,
      r.key,
      r.value,
      JSON.stringify({ 'event-id': r.eventId, tenant: r.tenant }),
      r.eventId,
      Date.now(),
    );
  }
  raw.exec('COMMIT');
  const rawRate = EVENTS / ((performance.now() - rawStart) / 1_000);
  raw.close();

  writeReport({
    name: 'bus-throughput',
    figures: [
      figure('embedded bus, publish + consume through a consumer group', 'events/s', busRate, {
        name: 'raw node:sqlite inserts, one transaction',
        value: rawRate,
      }),
      figure(
        'embedded bus, publish calls alone (batches of 500, consumer running alongside)',
        'events/s',
        publishRate,
        { name: 'raw node:sqlite inserts, one transaction', value: rawRate },
      ),
      figure('p99 publish -> handler latency', 'ms', p99Ms),
      figure('p50 publish -> handler latency', 'ms', p50Ms),
    ],
    notes: [
      `${EVENTS} events of ${meanBytes.toFixed(0)} bytes (FlUpdate, TopicCodec wire format, encoded before timing), ${ROUNDS} partitions, publish batches of ${BATCH}, one group member in the same process`,
      'target: >= 50,000 events/s end to end; the peer only writes rows (no offsets, no consumer, no group)',
    ],
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
