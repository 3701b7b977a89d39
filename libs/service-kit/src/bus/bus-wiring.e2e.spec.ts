import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Module } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EVENT_BUS,
  OnEvent,
  TYPED_BUS,
  type EventBus,
  type KafkaTopicValues,
  type TypedBus,
  type TypedRecord,
} from '@edgefl/bus';
import type { DevicePresence } from '@edgefl/contracts';
import { eventually, freePort, tempDir } from '@edgefl/testing';
import { defineServiceConfig } from '../config/service-config.js';
import { createLogger } from '../logging/logger.js';
import { startService, type RunningService } from '../bootstrap.js';
import { ServiceKitModule } from '../service-kit.module.js';

const PRESENCE = 'edgefl.device.presence.v1';
const received: DevicePresence[] = [];

@Injectable()
class PresenceConsumer {
  @OnEvent(PRESENCE, { group: 'kit-consumer', fromBeginning: true, maxAttempts: 1 })
  onPresence(record: TypedRecord<KafkaTopicValues, typeof PRESENCE>): void {
    received.push(record.value);
  }
}

@Injectable()
class PresencePublisher {
  constructor(
    @Inject(TYPED_BUS) readonly typed: TypedBus<KafkaTopicValues>,
    @Inject(EVENT_BUS) readonly raw: EventBus,
  ) {}
}

describe('the bus, wired by the service kit', () => {
  const running: RunningService[] = [];
  afterEach(async () => {
    for (const service of running.splice(0)) await service.close();
  });

  async function start(name: string, dataDir: string, providers: Array<new (...args: never[]) => unknown>) {
    const config = defineServiceConfig({
      service: name,
      defaultPort: 1,
      ownShape: {},
      mapOwn: () => ({}),
    }).load({
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: dataDir,
    });
    const logger = createLogger({ service: name, level: 'warn', destination: { write: () => undefined } });
    @Module({ imports: [ServiceKitModule.forRoot({ config, logger })], providers })
    class AppModule {}
    const service = await startService({
      config,
      logger,
      module: { module: AppModule },
      shutdownHooks: false,
    });
    running.push(service);
    return service;
  }

  it('carries typed events between two services sharing the embedded bus, and dead-letters undecodable bytes', async () => {
    const dir = await tempDir('edgefl-kit-bus-');
    received.length = 0;
    const producer = await start('producer', dir.path, [PresencePublisher]);
    const consumer = await start('consumer', dir.path, [PresenceConsumer]);
    const publisher = producer.app.get(PresencePublisher);

    const event: DevicePresence = {
      eventId: randomUUID(),
      tenant: 'acme',
      deviceId: 'terminal-0042',
      status: 'ONLINE',
      reason: 'CONNECTED',
      timestamp: Date.now(),
    };
    await publisher.typed.publish(PRESENCE, [{ value: event }]);
    // garbage on the same topic: must be dead-lettered with its reason, and the consumer must keep going
    await publisher.raw.publish([
      { topic: PRESENCE, key: 'terminal-0043', value: Buffer.from('not avro at all') },
    ]);
    const second = {
      ...event,
      eventId: randomUUID(),
      status: 'OFFLINE' as const,
      reason: 'DISCONNECTED' as const,
    };
    await publisher.typed.publish(PRESENCE, [{ value: second }]);

    await eventually('both presence events', () => received.length >= 2);
    expect(received).toEqual([event, second]);

    const metrics = await (await fetch(`${consumer.url}/metrics`)).text();
    expect(metrics).toMatch(
      /edgefl_bus_dead_lettered_total\{[^}]*topic="edgefl\.device\.presence\.v1"[^}]*\} 1/,
    );
    const ready = (await (await fetch(`${consumer.url}/health/ready`)).json()) as {
      info: Record<string, unknown>;
    };
    expect(ready.info).toHaveProperty('bus');
    for (const service of running.splice(0)) await service.close();
    await dir.remove();
  });
});
