// External-broker mode against a real Mosquitto: this suite runs its own mosquitto process on a free port with the
// config and ACL of infra/mosquitto (the machine's own Mosquitto on 1883 allows anonymous clients and has no ACL), two
// gateway replicas split the up traffic through an MQTT 5 shared subscription, and the broker's ACL keeps devices in
// their own subtree.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_TOPICS, mqttBroadcastTopic, mqttDeviceTopic } from '@edgefl/contracts';
import { announceSkip, freePort, tcpReachable, tempDir } from '@edgefl/testing';
import {
  busCount,
  connectDevice,
  encodeUp,
  eventually,
  Inbox,
  metric,
  readBus,
  so,
  startGateway,
  type TestGateway,
} from './harness.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) =>
  existsSync(p),
);
const PASSWD = ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) => existsSync(p));
if (!MOSQUITTO || !PASSWD)
  announceSkip(
    'gateway external-broker (Mosquitto) suite',
    'no mosquitto / mosquitto_passwd binary on this machine',
  );

const T = `ext-${randomUUID().slice(0, 8)}`;
const GATEWAY_PASSWORD = `gw-${randomUUID()}`;
const DEVICES = { 'ext-1': `pw-${randomUUID()}`, 'ext-2': `pw-${randomUUID()}` };

describe.skipIf(!MOSQUITTO || !PASSWD)(
  'external-broker mode over Mosquitto with MQTT 5 shared subscriptions',
  () => {
    let broker: ChildProcess;
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let url: string;
    let a: TestGateway;
    let b: TestGateway;
    const device = (id: keyof typeof DEVICES) => connectDevice(url, id, DEVICES[id]);

    beforeAll(async () => {
      dir = await tempDir('edgefl-mosq-');
      const port = await freePort();
      url = `mqtt://127.0.0.1:${port}`;
      // the shipped config, with this run's port, files and no persistence directory of its own
      const conf = `${dir.path}/mosquitto.conf`;
      writeFileSync(
        conf,
        readFileSync(`${root}infra/mosquitto/mosquitto.conf`, 'utf8')
          .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
          .replace(/^password_file passwd$/m, `password_file ${dir.path}/passwd`)
          .replace(/^acl_file acl$/m, `acl_file ${dir.path}/acl`)
          .replace(/^persistence true$/m, 'persistence false')
          .replace(/^persistence_location data\/$/m, ''),
      );
      execFileSync(PASSWD!, ['-b', '-c', `${dir.path}/passwd`, 'edgefl-gateway', GATEWAY_PASSWORD]);
      for (const [id, password] of Object.entries(DEVICES))
        execFileSync(PASSWD!, ['-b', `${dir.path}/passwd`, id, password]);
      const acl = execFileSync('sh', [`${root}infra/mosquitto/gen-acl.sh`], {
        input:
          Object.keys(DEVICES)
            .map((id) => `${T} ${id}`)
            .join('\n') + '\n',
      });
      writeFileSync(`${dir.path}/acl`, acl);
      mkdirSync(`${dir.path}/data`, { recursive: true });
      // mosquitto started as root drops to its own user, which must be able to read these files
      chmodSync(dir.path, 0o755);
      for (const file of ['mosquitto.conf', 'passwd', 'acl']) chmodSync(`${dir.path}/${file}`, 0o644);
      broker = spawn(MOSQUITTO!, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      let brokerLog = '';
      broker.stderr!.on('data', (chunk: Buffer) => (brokerLog += chunk.toString()));
      await eventually('mosquitto listens', async () => tcpReachable('127.0.0.1', port, 500), 20_000).catch(
        (error: Error) => {
          throw new Error(`${error.message}: ${brokerLog.slice(-2000)}`);
        },
      );
      const env = (id: string) => ({
        GATEWAY_MQTT_MODE: 'external',
        GATEWAY_EXTERNAL_URL: url,
        GATEWAY_EXTERNAL_PASSWORD: GATEWAY_PASSWORD,
        GATEWAY_EXTERNAL_CLIENT_ID: `edgefl-gateway-${id}-${randomUUID().slice(0, 6)}`,
      });
      // two replicas on one bus: each record must land exactly once whichever replica got it
      a = await startGateway('http://127.0.0.1:9/unused-in-external-mode', env('a'));
      b = await startGateway('http://127.0.0.1:9/unused-in-external-mode', env('b'), a.dataDir);
    }, 60_000);

    afterAll(async () => {
      await b?.gateway.close();
      await a?.stop();
      broker?.kill('SIGTERM');
      await dir?.remove();
    });

    it('splits the up traffic between the replicas and stores each message exactly once', async () => {
      const client = await device('ext-1');
      const sent = Array.from({ length: 40 }, () => encodeUp('io.edgefl.device.DeviceTelemetry', T, 'ext-1'));
      for (const payload of sent)
        await client.publishAsync(mqttDeviceTopic(T, 'ext-1', 'telemetry'), payload, { qos: 1 });
      await eventually(
        '40 records',
        async () => (await busCount(a.bus, KAFKA_TOPICS.deviceTelemetry.name)) >= 40 || undefined,
      );
      const reader = await readBus(a.bus, [KAFKA_TOPICS.deviceTelemetry.name]);
      await eventually('all read', async () => reader.records.length >= 40 || undefined);
      await reader.close();
      const ids = sent.map((p) => so.decode(p, 'io.edgefl.device.DeviceTelemetry').eventId).sort();
      expect(reader.records.map((r) => r.eventId).sort()).toEqual(ids);
      const inA = await metric(a.gateway.url, 'edgefl_gateway_messages_in_total', { channel: 'telemetry' });
      const inB = await metric(b.gateway.url, 'edgefl_gateway_messages_in_total', { channel: 'telemetry' });
      expect(inA + inB).toBe(40);
      expect(inA).toBeGreaterThan(0);
      expect(inB).toBeGreaterThan(0);
      await client.endAsync();
    });

    it('answers an FL update through the broker, and retains a manifest there', async () => {
      const client = await device('ext-2');
      const inbox = new Inbox(client);
      const reply = mqttDeviceTopic(T, 'ext-2', 'fl-update', { reply: true });
      await client.subscribeAsync([reply, mqttBroadcastTopic(T, 'release')], { qos: 1 });
      await client.publishAsync(
        mqttDeviceTopic(T, 'ext-2', 'fl-update'),
        encodeUp('io.edgefl.fl.FlUpdate', T, 'ext-2'),
        { qos: 1 },
      );
      await inbox.next(reply);
      expect(inbox.decode(reply, 'io.edgefl.device.MessageAck')[0]!.accepted).toBe(true);
      await client.endAsync();
    });

    it("enforces the broker-side ACL: another device's topics are neither written nor read", async () => {
      const intruder = await device('ext-2');
      const victim = await device('ext-1');
      const stolen = new Inbox(intruder);
      await intruder.subscribeAsync(`edgefl/${T}/ext-1/#`, { qos: 1 }).catch(() => undefined);
      const before = await busCount(a.bus, KAFKA_TOPICS.otaStatus.name);
      await intruder.publishAsync(
        mqttDeviceTopic(T, 'ext-1', 'ota-status'),
        encodeUp('io.edgefl.ota.OtaStatus', T, 'ext-1'),
        { qos: 1 },
      );
      await intruder.publishAsync(
        mqttDeviceTopic('other', 'ext-2', 'ota-status'),
        encodeUp('io.edgefl.ota.OtaStatus', 'other', 'ext-2'),
        {
          qos: 1,
        },
      );
      // a message the victim itself sends afterwards arrives: everything before it was handled
      await victim.publishAsync(
        mqttDeviceTopic(T, 'ext-1', 'ota-status'),
        encodeUp('io.edgefl.ota.OtaStatus', T, 'ext-1'),
        { qos: 1 },
      );
      await eventually(
        'the victim’s own record',
        async () => (await busCount(a.bus, KAFKA_TOPICS.otaStatus.name)) >= before + 1 || undefined,
      );
      expect(await busCount(a.bus, KAFKA_TOPICS.otaStatus.name)).toBe(before + 1);
      expect(stolen.messages).toHaveLength(0);
      await intruder.endAsync();
      await victim.endAsync();
    });
  },
);
