import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeDevice } from '@edgefl/device-sdk';
import { FRAUD_MLP } from '@edgefl/model';
import { eventually, tempDir } from '@edgefl/testing';
import {
  onnxOf,
  seedRegistry,
  startBroker,
  startRegistryProcess,
  versionWeights,
  type RegistryProcess,
} from './device-stack.js';

/**
 * A gateway still replaying its lifecycle topic refuses CONNECT with "server unavailable" (CONNACK 3). A device
 * meeting it must retry soon, not at its next manifest poll (a minute by default): here the poll is 10 minutes, the
 * broker refuses the first two CONNECTs, and the device must be connected within seconds.
 */
describe('device SDK: a refused MQTT CONNECT is retried with backoff', () => {
  let registry: RegistryProcess;
  let broker: Awaited<ReturnType<typeof startBroker>>;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let device: EdgeDevice | undefined;
  let refusals = 0;

  beforeAll(async () => {
    dir = await tempDir('edgefl-device-reconnect-');
    registry = await startRegistryProcess();
    await seedRegistry(registry, 'fraud', FRAUD_MLP, []);
    await registry.upload('fraud', onnxOf(FRAUD_MLP, versionWeights(FRAUD_MLP, 3, 0)));
    await registry.call('PUT', '/v1/tenants/acme/baseline', { modelId: 'fraud', version: 1 });
    broker = await startBroker();
    broker.aedes.authenticate = (_client, _username, _password, callback) => {
      if (refusals < 2) {
        refusals++;
        callback(Object.assign(new Error('starting'), { returnCode: 3 }) as never, false);
      } else callback(null, true);
    };
  }, 120_000);
  afterAll(async () => {
    await device?.stop();
    await broker?.close();
    await registry?.stop();
    await dir?.remove();
  });

  it('connects after two refusals without waiting for the poll', async () => {
    const lines: string[] = [];
    device = new EdgeDevice({
      registryUrl: registry.url,
      mqttUrl: broker.url,
      tenant: 'acme',
      deviceId: 'retry-1',
      modelId: 'fraud',
      keyFile: join(dir.path, 'retry-1.pem'),
      dataDir: join(dir.path, 'retry-1'),
      adminToken: registry.adminToken,
      pollIntervalMs: 600_000,
      heartbeatIntervalMs: 600_000,
      log: (line) => lines.push(line),
    });
    await device.start();
    expect(device.store.active?.version).toBe(1);
    await eventually('the device connected', async () => device!.connected, 30_000);
    expect(refusals).toBe(2);
    expect(lines.filter((l) => /^MQTT: .*retrying in \d+ ms$/.test(l))).toHaveLength(2);
  }, 60_000);
});
