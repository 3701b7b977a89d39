// Test harness of the gateway e2e suites: a JWKS the tests sign device tokens with (the registry's token format:
// EdDSA, kid, iss edgefl-registry, aud edgefl-mqtt, sub = device id, tenant, group), the real gateway on free ports,
// mqtt.js devices, and bus readers. The real registry is used by registry.e2e.spec.ts.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { SingleObjectCodec, type KafkaTopicName, type RecordName, type RecordTypes } from '@edgefl/contracts';
import { TYPED_BUS, type BusRecord, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { eventually, freePort, LogSink, tempDir, testBusEnv } from '@edgefl/testing';
import { expect } from 'vitest';
import { UP_ROUTES } from '../src/uplink/channels.js';
import type { MqttChannel } from '@edgefl/contracts';
import { bootstrap, type RunningGateway } from '../src/main.js';

export const so = new SingleObjectCodec();

/** The tree's one polling helper (libs/testing), re-exported for the suites here. */
export { eventually };

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** Signs device tokens like the registry and serves their JWKS over HTTP. */
export class TestIssuer {
  private keys: Array<{ kid: string; privateKey: SigningKey; jwk: JWK }> = [];
  private server: Server | null = null;
  jwksFetches = 0;
  url = '';

  static async start(): Promise<TestIssuer> {
    const issuer = new TestIssuer();
    await issuer.rotate();
    issuer.server = createServer((req, res) => {
      issuer.jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: issuer.keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => issuer.server!.listen(0, '127.0.0.1', resolve));
    issuer.url = `http://127.0.0.1:${(issuer.server.address() as AddressInfo).port}/v1/device-tokens/jwks.json`;
    return issuer;
  }

  /** Adds a new signing key (published in the JWKS) and signs with it from now on. */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = randomUUID().replace(/-/g, '').slice(0, 32);
    this.keys.push({
      kid,
      privateKey,
      jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' },
    });
    return kid;
  }

  async token(
    deviceId: string,
    tenant: string,
    options: {
      group?: string | null;
      audience?: string;
      issuer?: string;
      expiresInS?: number;
      issuedAtS?: number;
      /** Sign with a key the JWKS does not publish. */
      unpublishedKey?: boolean;
    } = {},
  ): Promise<string> {
    const key = options.unpublishedKey
      ? { kid: 'not-published', privateKey: (await generateKeyPair('EdDSA', { crv: 'Ed25519' })).privateKey }
      : this.keys[this.keys.length - 1]!;
    const iat = options.issuedAtS ?? Math.floor(Date.now() / 1000);
    return new SignJWT({ tenant, group: options.group ?? null })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })
      .setIssuer(options.issuer ?? 'edgefl-registry')
      .setAudience([options.audience ?? 'edgefl-mqtt', 'edgefl-registry'])
      .setSubject(deviceId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + (options.expiresInS ?? 900))
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export interface TestGateway {
  gateway: RunningGateway;
  bus: TypedBus<KafkaTopicValues>;
  logs: LogSink;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts the real gateway on free ports with a private data dir (embedded bus), trusting the JWKS at `jwksUrl`. */
export async function startGateway(
  jwksUrl: string,
  env: Record<string, string> = {},
  dataDir?: string,
): Promise<TestGateway> {
  const dir = dataDir ? null : await tempDir('edgefl-gw-');
  const logs = new LogSink();
  // the bus of the enclosing describeOnBuses (or EDGEFL_BUS), as every service suite runs on it
  const bus = await testBusEnv(dataDir ?? dir!.path, env);
  const gateway = await bootstrap({
    env: {
      PATH: process.env['PATH'],
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: dataDir ?? dir!.path,
      LOG_LEVEL: 'info',
      GATEWAY_MQTT_PORT: '0',
      GATEWAY_JWKS_URL: jwksUrl,
      ...bus.env,
      ...env,
    },
    shutdownHooks: false,
    logDestination: logs,
  });
  const typed = gateway.app.get<symbol, TypedBus<KafkaTopicValues>>(TYPED_BUS);
  await eventually(
    'the gateway is ready',
    async () => (await fetch(`${gateway.url}/health/ready`).catch(() => undefined))?.ok,
  );
  return {
    gateway,
    bus: typed,
    logs,
    dataDir: dataDir ?? dir!.path,
    async stop() {
      await gateway.close();
      await dir?.remove();
    },
  };
}

/** A device over mqtt.js (MQTT 3.1.1, client id = device id), as the device SDK connects. */
export function connectDevice(
  url: string,
  deviceId: string,
  token: string,
  options: IClientOptions = {},
): Promise<MqttClient> {
  return connectAsync(url, {
    protocolVersion: 4,
    clientId: deviceId,
    username: deviceId,
    password: token,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
}

/** The CONNACK return code a connection attempt gets (0 = accepted). */
export async function connackCode(url: string, options: IClientOptions): Promise<number> {
  try {
    const client = await connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    });
    await client.endAsync();
    return 0;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw error;
  }
}

/** The SUBACK return codes of a subscription (128 = refused); mqtt.js rejects when any is refused. */
export async function subscribeCodes(client: MqttClient, filters: string | string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (error) {
    const granted = (error as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted;
    if (!granted) throw error;
    return granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

/** Collects the messages a client receives, by topic. */
export class Inbox {
  readonly messages: Array<{ topic: string; payload: Buffer; retain: boolean }> = [];
  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) =>
      this.messages.push({ topic, payload, retain: packet.retain }),
    );
  }
  on(topic: string) {
    return this.messages.filter((m) => m.topic === topic);
  }
  async next(topic: string, count = 1) {
    return eventually(`${count} message(s) on ${topic}`, async () => {
      const got = this.on(topic);
      return got.length >= count ? got : undefined;
    });
  }
  decode<N extends RecordName>(topic: string, schema: N): RecordTypes[N][] {
    return this.on(topic)
      .filter((m) => m.payload.length > 0)
      .map((m) => so.decode(m.payload, schema));
  }
}

/** Everything a fresh consumer group reads from some topics (from the beginning). */
export async function readBus(bus: TypedBus<KafkaTopicValues>, topics: readonly KafkaTopicName[]) {
  const records: BusRecord[] = [];
  const subscription = await bus.bus.subscribe({
    group: `test-reader-${randomUUID()}`,
    topics,
    fromBeginning: true,
    handler: (record) => {
      records.push(record);
    },
  });
  return { records, close: () => subscription.close() };
}

/** Records waiting on some topics for a group that never consumed: the count of records the bus holds. */
export async function busCount(bus: TypedBus<KafkaTopicValues>, topic: KafkaTopicName): Promise<number> {
  const lag = await bus.bus.consumerLag('test-never-consumes', [topic]);
  return lag.reduce((sum, p) => sum + p.lag, 0);
}

/** A Prometheus sample of the gateway's /metrics (0 when absent). */
export async function metric(
  gatewayUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** A valid payload value per up schema, for `tenant`/`device`. */
export function upValue(schema: RecordName, tenant: string, deviceId: string): RecordTypes[RecordName] {
  const eventId = randomUUID();
  const now = Date.now();
  switch (schema) {
    case 'io.edgefl.device.DeviceTelemetry':
      return {
        eventId,
        tenant,
        deviceId,
        modelId: 'fraud',
        modelVersion: 3,
        ramTotalBytes: 1 << 30,
        ramFreeBytes: 1 << 29,
        cpuPercent: 12.5,
        accelerator: 'NONE',
        batteryPercent: null,
        networkType: 'WIFI',
        firmwareVersion: '2.1.0',
        timestamp: now,
        group: 'eu-west',
        featureSummaries: [
          {
            name: 'amount',
            count: 40,
            mean: 0.1,
            std: 0.9,
            min: -2.5,
            max: 3,
            bins: [4, 30, 6],
            binEdges: [-3, -1, 1, 3],
          },
        ],
      };
    case 'io.edgefl.device.DevicePresence':
      return { eventId, tenant, deviceId, status: 'OFFLINE', reason: 'DISCONNECTED', timestamp: now };
    case 'io.edgefl.inference.InferenceLog':
      return {
        eventId,
        tenant,
        deviceId,
        modelId: 'fraud',
        modelVersion: 3,
        prediction: [0.2],
        label: null,
        confidence: 0.8,
        latencyMs: 0.4,
        inputHash: 'ab'.repeat(32),
        source: 'EDGE',
        cacheHit: null,
        arm: null,
        errorCode: null,
        timestamp: now,
      };
    case 'io.edgefl.inference.InferenceRequest':
      return {
        eventId,
        tenant,
        deviceId,
        correlationId: randomUUID(),
        modelId: 'fraud',
        edgeModelVersion: 3,
        input: [0.1, 0.2],
        shape: [1, 2],
        edgeConfidence: 0.4,
        timestamp: now,
      };
    case 'io.edgefl.fl.FlUpdate':
      return {
        eventId,
        tenant,
        updateId: randomUUID(),
        roundId: 'round-1',
        deviceId,
        sampleCount: 10,
        payloadKind: 'SEALED',
        payload: Buffer.from([1, 2, 3]),
        signature: Buffer.alloc(64, 7),
        signingKeyId: 'k1',
        createdAt: now,
      };
    case 'io.edgefl.fl.SecAggMessage':
      return {
        eventId,
        tenant,
        roundId: 'round-1',
        senderDeviceId: deviceId,
        phase: 'ADVERTISE_KEYS',
        participants: [],
        cipherPublicKey: Buffer.alloc(32, 1),
        maskPublicKey: Buffer.alloc(32, 2),
        keySignature: Buffer.alloc(64, 3),
        encryptedShares: {},
        maskedInput: null,
        selfMaskShares: {},
        maskKeyShares: {},
        config: null,
        bucket: 0,
        advertisedKeys: {},
        selfMaskCommitment: null,
        consistencySignature: null,
        survivorSignatures: {},
        dropped: [],
        recipientDeviceId: null,
        createdAt: now,
      };
    case 'io.edgefl.ota.OtaStatus':
      return {
        eventId,
        tenant,
        deviceId,
        modelId: 'fraud',
        releaseId: 'r1',
        fromVersion: 2,
        toVersion: 3,
        state: 'ACTIVE',
        viaDelta: true,
        errorCode: null,
        errorMessage: null,
        bytesDownloaded: 1000,
        bytesTotal: 1000,
        timestamp: now,
      };
    default:
      throw new Error(`no sample for ${schema}`);
  }
}

export function encodeUp(schema: RecordName, tenant: string, deviceId: string): Buffer {
  return so.encode(schema, upValue(schema, tenant, deviceId) as never);
}

/** Publishes a valid message on a device's up channel with QoS 1 and asserts its record is stored once the PUBACK came. */
export async function expectBridged(
  gw: TestGateway,
  client: MqttClient,
  tenant: string,
  deviceId: string,
  channel: MqttChannel,
): Promise<void> {
  const route = UP_ROUTES[channel]!;
  const before = await busCount(gw.bus, route.topic);
  await client.publishAsync(
    `edgefl/${tenant}/${deviceId}/${channel}`,
    encodeUp(route.schema, tenant, deviceId),
    { qos: 1 },
  );
  expect(await busCount(gw.bus, route.topic)).toBe(before + 1);
}
