// The load generator of bench/gateway-*.bench.ts, in its own process (the load must not share the broker's event
// loop): N simulated devices as raw MQTT 3.1.1 connections (mqtt-packet: generator and parser, far lighter per
// connection than a full client), each authenticated with its own token.
// Usage: node bench/gateway/load.ts <spec.json>   spec: { url, devices: [{ id, tenant, password }], mode, seconds,
//   inFlight, payloads: { [id]: base64[] } }
// mode "publish": every device keeps `inFlight` QoS 1 telemetry messages outstanding for `seconds`; prints one JSON
//   line { sent, acked, seconds, latencyMs: { p50, p90, p99, max } } (publish → PUBACK, acked within the window).
// mode "hold": connects every device, prints { connected } once all CONNACKs came, then holds until stdin closes.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import hdr from 'hdr-histogram-js';
import mqttPacket from 'mqtt-packet';
import type { LoadSpec as Spec } from './harness.ts';

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Spec;
const { hostname, port } = new URL(spec.url);
const latency = hdr.build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 60_000_000,
  numberOfSignificantValueDigits: 3,
});
let sent = 0;
let acked = 0;
let running = true;

function device(d: Spec['devices'][number]): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const sentAt = new Map<number, bigint>();
    const payloads = (spec.payloads[d.id] ?? []).map((p) => Buffer.from(p, 'base64'));
    const topic = spec.topic.replace('{tenant}', d.tenant).replace('{id}', d.id);
    let nextId = 1;
    let nextPayload = 0;
    const publishOne = () => {
      if (!running) return;
      const messageId = nextId;
      nextId = nextId === 65_535 ? 1 : nextId + 1;
      sentAt.set(messageId, process.hrtime.bigint());
      sent++;
      socket.write(
        mqttPacket.generate({
          cmd: 'publish',
          topic,
          payload: payloads[nextPayload++ % payloads.length]!,
          qos: 1,
          messageId,
          retain: false,
          dup: false,
        }),
      );
    };
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) return reject(new Error(`${d.id}: CONNACK ${packet.returnCode}`));
        resolve(socket);
      } else if (packet.cmd === 'puback') {
        const start = sentAt.get(packet.messageId!);
        if (start === undefined) return;
        sentAt.delete(packet.messageId!);
        if (running) acked++; // the figure counts what was acknowledged within the window
        latency.recordValue(Number((process.hrtime.bigint() - start) / 1000n)); // µs
        publishOne();
      }
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: d.id,
          clean: true,
          keepalive: 600,
          ...(d.password === null ? {} : { username: d.id, password: Buffer.from(d.password) }),
        }),
      );
    });
    (socket as Socket & { startPublishing?: () => void }).startPublishing = () => {
      for (let i = 0; i < spec.inFlight; i++) publishOne();
    };
  });
}

// connect in waves so the broker's accept queue is not the thing measured
const sockets: Socket[] = [];
for (let i = 0; i < spec.devices.length; i += 200)
  sockets.push(...(await Promise.all(spec.devices.slice(i, i + 200).map(device))));

if (spec.mode === 'hold') {
  process.stdout.write(`${JSON.stringify({ connected: sockets.length })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  const started = process.hrtime.bigint();
  for (const s of sockets) (s as Socket & { startPublishing: () => void }).startPublishing();
  await new Promise((r) => setTimeout(r, spec.seconds * 1000));
  running = false;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // outstanding messages finish (their PUBACKs are counted), then the sockets close
  await new Promise((r) => setTimeout(r, 1000));
  const ms = (p: number) => latency.getValueAtPercentile(p) / 1000;
  process.stdout.write(
    `${JSON.stringify({ sent, acked, seconds, latencyMs: { p50: ms(50), p90: ms(90), p99: ms(99), max: latency.maxValue / 1000 } })}\n`,
  );
  for (const s of sockets) s.destroy();
  process.exit(0);
}
