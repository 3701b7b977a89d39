// Sustained QoS 1 telemetry from 1,000 connected simulated devices (raw MQTT 3.1.1 connections in a second process,
// each keeping one message outstanding): msgs/s and p99 publish → PUBACK. The gateway sends the PUBACK only after the
// embedded bus stored the record, so for it this is publish → bus. Peers in the same run with the same load and
// payload: plain aedes (no authentication, no bridge: the bridge overhead) and the machine's Mosquitto at
// 127.0.0.1:1883 (when it answers). Targets (issue 11): >= 20,000 msgs/s; overhead <= 30% vs plain aedes.
import { randomUUID } from 'node:crypto';
import { SingleObjectCodec } from '@edgefl/contracts';
import { figure, writeReport, type Figure } from './lib/report.ts';
import { reachable, runLoad, startBroker, tokenIssuer, type LoadSpec } from './gateway/harness.ts';

const DEVICES = Number(process.env.GATEWAY_BENCH_DEVICES ?? 1000);
const SECONDS = Number(process.env.GATEWAY_BENCH_SECONDS ?? 10);
const TENANT = `bench-${randomUUID().slice(0, 8)}`;
const codec = new SingleObjectCodec();

interface Result {
  sent: number;
  acked: number;
  seconds: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

const issuer = await tokenIssuer();
const ids = Array.from({ length: DEVICES }, (_, i) => `bench-dev-${i}`);
const payloads: Record<string, string[]> = {};
for (const id of ids)
  payloads[id] = Array.from({ length: 20 }, () =>
    codec
      .encode('io.edgefl.device.DeviceTelemetry', {
        eventId: randomUUID(),
        tenant: TENANT,
        deviceId: id,
        modelId: 'fraud',
        modelVersion: 3,
        ramTotalBytes: 1 << 30,
        ramFreeBytes: 1 << 29,
        cpuPercent: 12.5,
        accelerator: 'NONE',
        batteryPercent: 80,
        networkType: 'WIFI',
        firmwareVersion: '2.1.0',
        timestamp: Date.now(),
        group: null,
        featureSummaries: null,
      })
      .toString('base64'),
  );
const withTokens = await Promise.all(
  ids.map(async (id) => ({ id, tenant: TENANT, password: await issuer.token(id, TENANT) })),
);
const anonymous = ids.map((id) => ({ id, tenant: TENANT, password: null }));
const spec = (url: string, devices: LoadSpec['devices']): LoadSpec => ({
  url,
  devices,
  mode: 'publish',
  seconds: SECONDS,
  inFlight: 1,
  payloads,
  topic: 'edgefl/{tenant}/{id}/telemetry',
});

const gateway = await startBroker('gateway', issuer.url);
const before = (await gateway.ask('count')).records!;
const ours = (await runLoad(spec(gateway.url, withTokens)).result) as unknown as Result;
// give the last outstanding messages their PUBACK, then count what the bus holds
const stored = (await gateway.ask('count')).records! - before;
await gateway.stop();

const aedes = await startBroker('aedes', issuer.url);
const plain = (await runLoad(spec(aedes.url, anonymous)).result) as unknown as Result;
await aedes.stop();

const mosquittoUp = await reachable('127.0.0.1', 1883);
const mosquitto = mosquittoUp
  ? ((await runLoad(spec('mqtt://127.0.0.1:1883', anonymous)).result) as unknown as Result)
  : null;
await issuer.close();

const rate = (r: Result) => r.acked / r.seconds;
const figures: Figure[] = [
  figure('gateway msgs/s (QoS 1, into the bus)', 'msg/s', rate(ours), {
    name: 'plain aedes',
    value: rate(plain),
  }),
  figure('gateway p99 publish→bus (PUBACK)', 'ms', ours.latencyMs.p99, {
    name: 'plain aedes',
    value: plain.latencyMs.p99,
  }),
  figure('gateway p50 publish→bus (PUBACK)', 'ms', ours.latencyMs.p50, {
    name: 'plain aedes',
    value: plain.latencyMs.p50,
  }),
];
if (mosquitto) {
  figures.push(
    figure('gateway msgs/s vs Mosquitto', 'msg/s', rate(ours), {
      name: 'Mosquitto 127.0.0.1:1883',
      value: rate(mosquitto),
    }),
    figure('gateway p99 vs Mosquitto', 'ms', ours.latencyMs.p99, {
      name: 'Mosquitto 127.0.0.1:1883',
      value: mosquitto.latencyMs.p99,
    }),
  );
}
writeReport({
  name: 'gateway-telemetry',
  figures,
  notes: [
    `${DEVICES} devices, ${SECONDS} s per broker, one QoS 1 message outstanding per device, ~${Buffer.from(payloads[ids[0]!]![0]!, 'base64').length} B single-object Avro payloads; load from a second process over loopback`,
    `the bus holds ${stored} of the gateway's ${ours.sent} sent messages (${ours.acked} acknowledged within the window; the rest were acknowledged after it)`,
    `bridge overhead vs plain aedes: ${((1 - rate(ours) / rate(plain)) * 100).toFixed(1)}% of throughput`,
    mosquitto
      ? 'Mosquitto: the machine’s own broker (anonymous, no bridge, no bus)'
      : 'Mosquitto did not answer on 127.0.0.1:1883: no Mosquitto figure',
    'shared 2-core machine; other engineers’ test runs load it at the same time',
  ],
});
