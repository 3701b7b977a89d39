import 'reflect-metadata';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { eventually, tempDir } from '@edgefl/testing';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EmbeddedBus } from '../embedded/embedded-bus.js';
import type { BusRecord, EventBus } from '../port.js';
import { BusModule } from './bus.module.js';
import { OnEvent } from './on-event.decorator.js';
import { EVENT_BUS } from './tokens.js';

const TOPIC = 'edgefl.test.things.v1';
const handled: string[] = [];
let inFlight = 0;
let finishedAfterShutdownBegan = false;

@Injectable()
class ThingsConsumer {
  constructor(@Inject(EVENT_BUS) readonly bus: EventBus) {}

  @OnEvent(TOPIC, {
    group: 'things',
    fromBeginning: true,
    dedupe: true,
    maxAttempts: 2,
    backoff: { initialMs: 1, maxMs: 1, factor: 1 },
  })
  async onThing(record: BusRecord): Promise<void> {
    const text = record.value.toString();
    if (text === 'bad') throw new Error('bad thing');
    if (text === 'slow') {
      inFlight++;
      await new Promise((r) => setTimeout(r, 300));
      finishedAfterShutdownBegan = true;
      inFlight--;
    }
    handled.push(text);
  }
}

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir('edgefl-bus-nest-');
  handled.length = 0;
});
afterEach(() => dir.remove());

it('subscribes @OnEvent methods at bootstrap, counts metrics, dedupes, and drains in-flight handlers on shutdown', async () => {
  const path = join(dir.path, 'bus.sqlite');
  const registry = new Registry();
  const moduleRef = await Test.createTestingModule({
    imports: [
      BusModule.forRoot({
        bus: { adapter: 'embedded', path, pollIntervalMs: 20 },
        metricsRegistry: registry,
        topics: [{ name: TOPIC, partitions: 2 }],
      }),
    ],
    providers: [ThingsConsumer],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  const bus = app.get<EventBus>(EVENT_BUS);
  await bus.publish([
    { topic: TOPIC, key: 'a', value: Buffer.from('one'), eventId: 'e1' },
    { topic: TOPIC, key: 'a', value: Buffer.from('one again'), eventId: 'e1' },
    { topic: TOPIC, key: 'a', value: Buffer.from('bad'), eventId: 'e2' },
    { topic: TOPIC, key: 'a', value: Buffer.from('two'), eventId: 'e3' },
  ]);
  await eventually('the good records', () => handled.includes('two'), 10_000);
  expect(handled).toEqual(['one', 'two']);

  const metrics = await registry.metrics();
  expect(metrics).toContain(`edgefl_bus_published_total{topic="${TOPIC}"} 4`);
  expect(metrics).toContain(`edgefl_bus_consumed_total{topic="${TOPIC}",group="things",outcome="ok"} 2`);
  expect(metrics).toContain(
    `edgefl_bus_consumed_total{topic="${TOPIC}",group="things",outcome="duplicate"} 1`,
  );
  expect(metrics).toContain(
    `edgefl_bus_dead_lettered_total{topic="${TOPIC}",group="things",reason_code="handler_failed"} 1`,
  );
  expect(metrics).toMatch(
    /edgefl_bus_handler_duration_seconds_count\{topic="edgefl.test.things.v1",group="things"\} [1-9]/,
  );
  expect(metrics).toContain(`edgefl_bus_consumer_lag{topic="${TOPIC}",group="things"} 0`);
  expect(await bus.health()).toMatchObject({ ready: true });

  await bus.publish([{ topic: TOPIC, key: 'a', value: Buffer.from('slow'), eventId: 'e4' }]);
  await eventually('the slow handler started', () => inFlight === 1, 10_000);
  await app.close();
  expect(finishedAfterShutdownBegan).toBe(true);
  expect(handled).toContain('slow');
  expect(await bus.health()).toMatchObject({ ready: false });

  // The drain committed: a restart does not see 'slow' again.
  const reopened = new EmbeddedBus({ path });
  expect(await reopened.consumerLag('things', [TOPIC])).toEqual([
    { topic: TOPIC, partition: 0, lag: 0 },
    { topic: TOPIC, partition: 1, lag: 0 },
  ]);
  await reopened.close();
});

it('builds the bus from async options', async () => {
  const path = join(dir.path, 'async.sqlite');
  const moduleRef = await Test.createTestingModule({
    imports: [
      BusModule.forRootAsync({ useFactory: async () => ({ bus: { adapter: 'embedded' as const, path } }) }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  expect(app.get<EventBus>(EVENT_BUS)).toBeInstanceOf(EmbeddedBus);
  await app.close();
});
