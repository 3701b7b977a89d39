// 10,000 concurrent authenticated device connections held on the gateway (raw MQTT 3.1.1 connections from a second
// process): RSS per connection of the gateway process, next to plain aedes holding the same 10,000 connections
// (no authentication) in the same run. Target (issue 11): 10,000 connections under 1 GB RSS.
import { randomUUID } from 'node:crypto';
import { figure, writeReport } from './lib/report.ts';
import { runLoad, startBroker, tokenIssuer, type BrokerProcess, type LoadSpec } from './gateway/harness.ts';

const CONNECTIONS = Number(process.env.GATEWAY_BENCH_CONNECTIONS ?? 10_000);
const TENANT = `bench-${randomUUID().slice(0, 8)}`;

const issuer = await tokenIssuer();
const ids = Array.from({ length: CONNECTIONS }, (_, i) => `conn-${i}`);
const withTokens = await Promise.all(
  ids.map(async (id) => ({ id, tenant: TENANT, password: await issuer.token(id, TENANT) })),
);

async function hold(broker: BrokerProcess, devices: LoadSpec['devices']) {
  const idle = (await broker.ask('rss')).rss!;
  const load = runLoad({
    url: broker.url,
    devices,
    mode: 'hold',
    seconds: 0,
    inFlight: 0,
    payloads: {},
    topic: '',
  });
  const { connected } = (await load.result) as { connected: number };
  const held = (await broker.ask('rss')).rss!;
  load.release();
  await broker.stop();
  return { connected, idle, held, perConnection: (held - idle) / connected };
}

const ours = await hold(await startBroker('gateway', issuer.url), withTokens);
const plain = await hold(
  await startBroker('aedes', issuer.url),
  ids.map((id) => ({ id, tenant: TENANT, password: null })),
);
await issuer.close();

const MB = 1024 * 1024;
writeReport({
  name: 'gateway-connections',
  figures: [
    figure(`gateway RSS holding ${ours.connected} connections`, 'MB', ours.held / MB, {
      name: 'plain aedes',
      value: plain.held / MB,
    }),
    figure('gateway RSS per connection', 'KB', ours.perConnection / 1024, {
      name: 'plain aedes',
      value: plain.perConnection / 1024,
    }),
  ],
  notes: [
    `RSS after a GC, idle (booted) vs holding: gateway ${(ours.idle / MB).toFixed(0)} → ${(ours.held / MB).toFixed(0)} MB, plain aedes ${(plain.idle / MB).toFixed(0)} → ${(plain.held / MB).toFixed(0)} MB`,
    'each gateway connection is an authenticated device (EdDSA JWT verified against the JWKS), with its session, limits and presence; aedes accepts anonymous connections',
    'shared 2-core machine; other engineers’ test runs load it at the same time',
  ],
});
