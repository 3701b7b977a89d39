// One broker under test, in a process of its own (so its RSS is its own): `gateway` (the edgefl gateway with the
// embedded bus) or `aedes` (plain aedes, no authentication, no bridge). Prints { url } once listening, then answers
// lines on stdin: `rss` → { rss } (after a GC), `count` → { records } on the telemetry topic (gateway), `stop`.
// Usage: node --expose-gc bench/gateway/serve.ts <gateway|aedes> <jwksUrl> <dataDir>
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { bootstrap } from '@edgefl/gateway';

const [kind, jwksUrl, dataDir] = process.argv.slice(2);
const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
let stop: () => Promise<void>;
let count: () => Promise<number> = async () => 0;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

if (kind === 'gateway') {
  const gateway = await bootstrap({
    env: {
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      GATEWAY_MQTT_PORT: '0',
      GATEWAY_JWKS_URL: jwksUrl,
      GATEWAY_RATE_LIMIT_PER_S: '1000000',
      GATEWAY_RATE_LIMIT_BURST: '1000000',
    },
    shutdownHooks: false,
    logDestination: process.stderr, // stdout carries the answers
  });
  const bus = gateway.app.get<symbol, TypedBus<KafkaTopicValues>>(TYPED_BUS);
  count = async () =>
    (await bus.bus.consumerLag('bench-never-consumes', ['edgefl.device.telemetry.v1'])).reduce(
      (s, p) => s + p.lag,
      0,
    );
  stop = () => gateway.close();
  out({ url: gateway.mqttUrl });
} else {
  const aedes = await Aedes.createBroker({ drainTimeout: 5_000 });
  const server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stop = () => new Promise<void>((resolve) => aedes.close(() => server.close(() => resolve())));
  out({ url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'rss') {
    (globalThis as { gc?: () => void }).gc?.();
    out({ rss: process.memoryUsage().rss });
  } else if (line === 'count') out({ records: await count() });
  else if (line === 'stop') break;
}
await stop();
process.exit(0);
