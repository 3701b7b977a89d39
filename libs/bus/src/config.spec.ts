import { expect, it } from 'vitest';
import { createBus, type BusConfig } from './config.js';
import { BusError } from './port.js';

it('refuses an unknown adapter or an incomplete Kafka config with a clear error', async () => {
  await expect(createBus({ adapter: 'rabbit' } as unknown as BusConfig)).rejects.toMatchObject({
    code: 'invalid_config',
  });
  await expect(createBus({ adapter: 'kafka', brokers: [], clientId: 'x' })).rejects.toBeInstanceOf(BusError);
  await expect(createBus({ adapter: 'kafka', brokers: ['127.0.0.1:9'], clientId: '' })).rejects.toMatchObject(
    { code: 'invalid_config' },
  );
  await expect(createBus({ adapter: 'embedded', path: '' })).rejects.toMatchObject({
    code: 'invalid_config',
  });
});

it('builds a Kafka bus lazily (no connection until used) and closes it cleanly', async () => {
  const bus = await createBus({ adapter: 'kafka', brokers: ['127.0.0.1:9'], clientId: 'edgefl-test' });
  await expect(bus.subscribe({ group: 'g', topics: ['bad topic'], handler: () => {} })).rejects.toMatchObject(
    { code: 'invalid_topic' },
  );
  await expect(bus.publish([{ topic: 't', key: 7 as never, value: Buffer.from('x') }])).rejects.toMatchObject(
    { code: 'invalid_key' },
  );
  await bus.close();
  await expect(bus.publish([{ topic: 't', key: 'k', value: Buffer.from('x') }])).rejects.toMatchObject({
    code: 'closed',
  });
});
