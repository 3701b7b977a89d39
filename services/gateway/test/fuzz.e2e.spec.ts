// Fuzz: ≥ 10,000 random and mutated MQTT packets (fast-check arbitraries written out by the maintained mqtt-packet
// generator, then bit-flipped, truncated or replaced by raw bytes) from authenticated raw sockets, while a well-behaved
// device keeps publishing. Asserts the gateway stays up, the good device is served throughout, and every record that
// reached an up topic of the bus decodes under its schema and speaks for the device that sent it.
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { generate, type Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EmbeddedSchemaRegistry,
  MQTT_CHANNELS,
  TopicCodec,
  mqttDeviceTopic,
  type KafkaTopicName,
  type MqttChannel,
} from '@edgefl/contracts';
import { UP_ROUTES } from '../src/uplink/channels.js';
import {
  TestIssuer,
  busCount,
  connectDevice,
  encodeUp,
  readBus,
  startGateway,
  eventually,
  type TestGateway,
} from './harness.js';

const T = `fuzz-${randomUUID().slice(0, 8)}`;
const FUZZERS = ['fz-0', 'fz-1', 'fz-2', 'fz-3'];
const PACKETS = 12_000;
const CHANNELS = Object.keys(MQTT_CHANNELS) as MqttChannel[];
const UP_SCHEMAS = Object.values(UP_ROUTES).map((r) => r!.schema);
const UP_TOPICS = Object.values(UP_ROUTES).map((r) => r!.topic) as KafkaTopicName[];

const topicArb = (device: string) =>
  fc.oneof(
    fc.constantFrom(...CHANNELS).map((c) => mqttDeviceTopic(T, device, c)),
    fc.constantFrom(...CHANNELS).map((c) => mqttDeviceTopic(T, 'victim', c)),
    fc.constantFrom(...CHANNELS).map((c) => mqttDeviceTopic('other-tenant', device, c)),
    fc.constantFrom(
      '#',
      '+',
      '$SYS/broker',
      `edgefl/${T}/../telemetry`,
      `edgefl/${T}//x`,
      `edgefl/${T}/${device}`,
      '',
    ),
    fc.string({ maxLength: 80 }),
  );

const payloadArb = (device: string) =>
  fc.oneof(
    fc
      .record({ schema: fc.constantFrom(...UP_SCHEMAS), who: fc.constantFrom(device, 'victim') })
      .map(({ schema, who }) => encodeUp(schema, T, who)),
    fc
      .record({ schema: fc.constantFrom(...UP_SCHEMAS), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) })
      .map(({ schema, at, bit }) => {
        const bytes = Buffer.from(encodeUp(schema, T, device));
        bytes[at % bytes.length] = bytes[at % bytes.length]! ^ (1 << bit);
        return bytes;
      }),
    fc.record({ schema: fc.constantFrom(...UP_SCHEMAS), cut: fc.nat() }).map(({ schema, cut }) => {
      const bytes = encodeUp(schema, T, device);
      return bytes.subarray(0, cut % bytes.length);
    }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  );

/** One fuzz packet as bytes: a generated packet, a mutated one, or raw garbage. */
const packetArb = (device: string): fc.Arbitrary<Buffer | null> => {
  const packet: fc.Arbitrary<Packet> = fc.oneof(
    fc
      .record({
        topic: topicArb(device),
        payload: payloadArb(device),
        qos: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
        retain: fc.boolean(),
        messageId: fc.integer({ min: 1, max: 65_535 }),
      })
      .map((p) => ({ cmd: 'publish' as const, dup: false, ...p })),
    fc
      .record({
        topic: topicArb(device),
        qos: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
        messageId: fc.integer({ min: 1, max: 65_535 }),
      })
      .map(({ topic, qos, messageId }) => ({
        cmd: 'subscribe' as const,
        messageId,
        subscriptions: [{ topic, qos }],
      })),
    fc
      .record({ topic: topicArb(device), messageId: fc.integer({ min: 1, max: 65_535 }) })
      .map(({ topic, messageId }) => ({ cmd: 'unsubscribe' as const, messageId, unsubscriptions: [topic] })),
    fc.constant({ cmd: 'pingreq' as const }),
    fc.integer({ min: 1, max: 65_535 }).map((messageId) => ({ cmd: 'puback' as const, messageId })),
  );
  const bytes = (p: Packet) => {
    try {
      return generate(p);
    } catch {
      return null; // mqtt-packet refuses some generated shapes (e.g. an empty subscribe topic): not sent
    }
  };
  return fc.oneof(
    { weight: 6, arbitrary: packet.map(bytes) },
    {
      weight: 2,
      arbitrary: fc
        .record({ p: packet, at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) })
        .map(({ p, at, value }) => {
          const b = bytes(p);
          if (!b) return null;
          const copy = Buffer.from(b);
          copy[at % copy.length] = value;
          return copy;
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ p: packet, cut: fc.nat() })
        .map(({ p, cut }) => bytes(p)?.subarray(0, 1 + (cut % 40)) ?? null),
    },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
};

const PINGREQ = generate({ cmd: 'pingreq' });
const PINGRESP = Buffer.from([0xd0, 0x00]);

interface RawConnection {
  socket: Socket;
  /** Resolves once the broker handled everything sent so far (its PINGRESP came) or closed the connection. */
  sync(): Promise<void>;
}

function openRaw(host: string, port: number, connectBytes: Buffer): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    let waiting: (() => void) | null = null;
    let tail = Buffer.alloc(0);
    const socket = connect({ host, port }, () => {
      socket.write(connectBytes);
      resolve({
        socket,
        sync: () =>
          new Promise<void>((done) => {
            if (socket.destroyed) return done();
            // a truncated packet or a corrupted length makes the broker read our PINGREQ as the rest of it and wait
            // for more: after a while this connection is given up (a fresh one carries on); nothing is asserted on it
            const giveUp = setTimeout(() => socket.destroy(), 500);
            waiting = () => {
              clearTimeout(giveUp);
              done();
            };
            socket.write(PINGREQ);
          }),
      });
    });
    const release = () => {
      const done = waiting;
      waiting = null;
      done?.();
    };
    socket.on('data', (chunk: Buffer) => {
      // CONNACK, SUBACK, PUBACK, …: only a PINGRESP matters (aedes answers packets of one connection in order)
      tail = Buffer.concat([tail, chunk]).subarray(-4096);
      if (tail.includes(PINGRESP)) {
        tail = Buffer.alloc(0);
        release();
      }
    });
    socket.once('close', release);
    socket.once('error', (error) => {
      release();
      reject(error);
    });
  });
}

describe('fuzz: random and mutated MQTT packets and payloads', () => {
  let issuer: TestIssuer;
  let gw: TestGateway;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    gw = await startGateway(issuer.url, {
      GATEWAY_RATE_LIMIT_PER_S: '1000000',
      GATEWAY_RATE_LIMIT_BURST: '1000000',
      GATEWAY_ABUSE_LIMIT: '1000',
      LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await issuer?.stop();
  });

  it(`stays up, keeps serving a good device, and lets nothing malformed onto the bus (${PACKETS} packets)`, async () => {
    const { hostname, port } = new URL(gw.gateway.mqttUrl);
    const good = await connectDevice(gw.gateway.mqttUrl, 'good', await issuer.token('good', T));
    let goodSent = 0;
    let fuzzing = true;
    const goodLoop = (async () => {
      // bounded (well below the 65,535 MQTT packet ids, so none is reused while the bus check runs)
      while (fuzzing && goodSent < 5_000) {
        await good.publishAsync(
          mqttDeviceTopic(T, 'good', 'telemetry'),
          encodeUp('io.edgefl.device.DeviceTelemetry', T, 'good'),
          {
            qos: 1,
          },
        );
        goodSent++;
      }
    })();

    let sent = 0;
    let reconnects = 0;
    await Promise.all(
      FUZZERS.map(async (device, index) => {
        const token = Buffer.from(await issuer.token(device, T, { expiresInS: 3600 }));
        const hello = generate({
          cmd: 'connect',
          protocolVersion: 4,
          clientId: device,
          clean: true,
          keepalive: 60,
          username: device,
          password: token,
        });
        const packets = fc.sample(packetArb(device), {
          numRuns: PACKETS / FUZZERS.length,
          seed: 4242 + index,
        });
        let raw = await openRaw(hostname, Number(port), hello);
        for (const bytes of packets) {
          if (!bytes) continue;
          if (raw.socket.destroyed) {
            raw = await openRaw(hostname, Number(port), hello);
            reconnects++;
          }
          raw.socket.write(bytes);
          sent++;
          // every 25 packets, wait until the broker has handled them (or dropped the connection)
          if (sent % 25 === 0) await raw.sync();
        }
        await raw.sync();
        raw.socket.destroy();
      }),
    );
    fuzzing = false;
    await goodLoop;
    expect(sent).toBeGreaterThanOrEqual(10_000);

    // the gateway is up and still serves: health, and a fresh device round-trips a QoS 1 message
    expect((await fetch(`${gw.gateway.url}/health/live`)).status).toBe(200);
    const fresh = await connectDevice(gw.gateway.mqttUrl, 'after', await issuer.token('after', T));
    await fresh.publishAsync(
      mqttDeviceTopic(T, 'after', 'telemetry'),
      encodeUp('io.edgefl.device.DeviceTelemetry', T, 'after'),
      { qos: 1 },
    );
    await fresh.endAsync();
    await good.endAsync();

    // every record on an up topic decodes and names its sender as tenant/device; the good device lost nothing
    const reader = await readBus(gw.bus, UP_TOPICS);
    const total = (await Promise.all(UP_TOPICS.map((t) => busCount(gw.bus, t)))).reduce((a, b) => a + b, 0);
    await eventually('every up record read', async () => reader.records.length >= total || undefined, 60_000);
    await reader.close();
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${gw.dataDir}/bus.sqlite`));
    const fromGood = new Set<string>(); // its telemetry (its presence events come from the gateway itself)
    for (const record of reader.records) {
      const value = (await codec.decode(record.topic as KafkaTopicName, record.value)) as unknown as Record<
        string,
        unknown
      >;
      const sender = value['deviceId'] ?? value['senderDeviceId'];
      expect(value['tenant'], record.topic).toBe(T);
      expect(sender, record.topic).toBe(record.headers['device']);
      expect(record.headers['tenant']).toBe(T);
      expect(['good', 'after', ...FUZZERS]).toContain(sender);
      if (sender === 'good' && record.topic === 'edgefl.device.telemetry.v1') fromGood.add(record.eventId);
    }
    expect(fromGood.size).toBe(goodSent);
    process.stdout.write(
      `fuzz: ${sent} packets, ${reconnects} reconnects, ${reader.records.length} valid records bridged\n`,
    );
  }, 240_000);
});
