import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FlUpdate, RoundEvent, RoundOpened } from '@edgefl/contracts';
import { openCatalogBus, type EventBus, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { createSeededUniform, encodeFloat32 } from '@edgefl/fl';
import { Ed25519SigningKey, encodeSealed, seal } from '@edgefl/keys';
import { buildOnnx, initWeights, mlp, type ModelSpec } from '@edgefl/model';
import { eventually, type TestBusTarget } from '@edgefl/testing';

export const SPEC: ModelSpec = mlp(6, [5], 3, 'softmax');
export const BASE = initWeights(SPEC, 7);

/** Plays the registry's artifact route for the base version (v1 of model `m`): an ONNX file libs/model builds. */
export async function fakeRegistry(): Promise<{ url: string; close(): Promise<void> }> {
  const onnx = Buffer.from(buildOnnx(SPEC, BASE));
  const server: Server = createServer((req, res) => {
    if (req.url === '/v1/models/m/versions/1/artifact') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(onnx);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** A simulated device: a real Ed25519 identity, registered through a DeviceLifecycle event. */
export interface SimDevice {
  id: string;
  key: Ed25519SigningKey;
}

export class TestBus {
  readonly events: RoundEvent[] = [];
  private constructor(
    readonly bus: EventBus,
    readonly typed: TypedBus<KafkaTopicValues>,
  ) {}

  /** A client of the bus the aggregator runs on: its data directory's bus file, or its Kafka cluster. */
  static async open(target: string | TestBusTarget): Promise<TestBus> {
    const on: TestBusTarget =
      typeof target === 'string' ? { adapter: 'embedded', path: join(target, 'bus.sqlite') } : target;
    const { bus, typed } = await openCatalogBus(on, 'edgefl-aggregator-test');
    const t = new TestBus(bus, typed);
    await t.typed.subscribe({
      group: `observer-${randomUUID()}`,
      topics: ['edgefl.fl.round.v1'],
      fromBeginning: true,
      handler: (r) => {
        t.events.push(r.value);
      },
    });
    return t;
  }

  async register(tenant: string, ids: string[]): Promise<SimDevice[]> {
    const devices = ids.map((id) => ({ id, key: Ed25519SigningKey.generate() }));
    await this.typed.publish(
      'edgefl.device.lifecycle.v1',
      devices.map((d) => ({
        value: {
          eventId: randomUUID(),
          tenant,
          deviceId: d.id,
          event: 'REGISTERED' as const,
          publicKey: Buffer.from(d.key.publicKey).toString('base64url'),
          keyId: d.key.keyId,
          previousKeyId: null,
          reason: null,
          tokensNotBefore: null,
          timestamp: Date.now(),
        },
      })),
    );
    return devices;
  }

  /** Waits until the aggregator's lifecycle consumer has taken every device event (their keys are stored). */
  async devicesKnown(): Promise<void> {
    await eventually(
      'device keys consumed',
      async () => {
        const lag = await this.bus.consumerLag('aggregator-devices', ['edgefl.device.lifecycle.v1']);
        return lag.length > 0 && lag.every((p) => p.lag === 0);
      },
      60_000,
    );
  }

  /** The admin token the e2e tests start the aggregator with. */
  static readonly ADMIN_TOKEN = 'aggregator-tests-admin-token';

  opened(roundId: string): RoundOpened | undefined {
    const e = this.events.find((x) => x.roundId === roundId && 'io.edgefl.fl.RoundOpened' in x.event);
    return e
      ? (e.event as { 'io.edgefl.fl.RoundOpened': RoundOpened })['io.edgefl.fl.RoundOpened']
      : undefined;
  }

  of(roundId: string, kind: 'RoundOpened' | 'RoundClosed' | 'RoundResult'): RoundEvent[] {
    return this.events.filter((x) => x.roundId === roundId && `io.edgefl.fl.${kind}` in x.event);
  }

  async publishUpdates(updates: FlUpdate[]): Promise<void> {
    await this.typed.publish(
      'edgefl.fl.update.v1',
      updates.map((value) => ({ value })),
    );
  }

  close(): Promise<void> {
    return this.bus.close();
  }
}

/** A seeded delta of the model's shape. */
export function delta(seed: number, scale = 0.01): Float32Array[] {
  const u = createSeededUniform(seed);
  return BASE.map((t) => Float32Array.from(t.data, () => (u() - 0.5) * scale));
}

/** What the device SDK sends: float32-encoded delta, sealed to the round key (info = round, aad = device), signed. */
export async function sealedUpdate(
  device: SimDevice,
  tenant: string,
  roundId: string,
  roundPublicKey: Uint8Array,
  weights: Float32Array[],
  options: { sampleCount?: number; updateId?: string; aad?: string; raw?: Uint8Array } = {},
): Promise<FlUpdate> {
  const plain = options.raw ?? encodeFloat32(weights);
  const sealed = encodeSealed(
    await seal(roundPublicKey, plain, { info: `edgefl/fl.update/${roundId}`, aad: options.aad ?? device.id }),
  );
  return {
    eventId: randomUUID(),
    tenant,
    updateId: options.updateId ?? randomUUID(),
    roundId,
    deviceId: device.id,
    sampleCount: options.sampleCount ?? 10,
    payloadKind: 'SEALED',
    payload: Buffer.from(sealed),
    signature: Buffer.from(device.key.sign(sealed)),
    signingKeyId: device.key.keyId,
    createdAt: Date.now(),
  };
}

/** A round-opening body over `devices` (quorum 3 unless `over` says otherwise); the deadline is ms from now. */
export function roundRequest(
  tenant: string,
  devices: readonly { id: string }[],
  deadlineInMs: number,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    tenant,
    modelId: 'm',
    baseVersion: 1,
    selectedDevices: devices.map((d) => d.id),
    quorum: 3,
    deadline: Date.now() + deadlineInMs,
    ...over,
  };
}
