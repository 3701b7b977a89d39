// TLS (server certificate), mutual TLS (a device certificate CN=<device>, O=<tenant> instead of a token) and
// MQTT over WebSocket, with certificates made by openssl for this run.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KAFKA_TOPICS, type DeviceLifecycle } from '@edgefl/contracts';
import { announceSkip, describeOnBuses, freePorts, tempDir } from '@edgefl/testing';
import {
  TestIssuer,
  connackCode,
  connectDevice,
  eventually,
  startGateway,
  type TestGateway,
  expectBridged,
} from './harness.js';

const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find((p) => existsSync(p));
if (!OPENSSL) announceSkip('gateway TLS suite', 'no openssl binary to make test certificates');
const T = `tls-${randomUUID().slice(0, 8)}`;

describeOnBuses('gateway transports: TLS, mutual TLS, WebSocket', () => {
  let issuer: TestIssuer;
  let gw: TestGateway;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const file = (name: string) => readFileSync(`${dir.path}/${name}`);

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    dir = await tempDir('edgefl-gw-tls-');
    if (OPENSSL) {
      const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir.path, stdio: 'ignore' });
      ssl(
        'req',
        '-x509',
        '-newkey',
        'ed25519',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=edgefl test CA',
      );
      ssl(
        'req',
        '-newkey',
        'ed25519',
        '-nodes',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
        '-subj',
        '/CN=localhost',
      );
      writeFileSync(`${dir.path}/san.cnf`, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
      ssl(
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '2',
        '-extfile',
        'san.cnf',
      );
      for (const device of ['cert-1', 'cert-2']) {
        ssl(
          'req',
          '-newkey',
          'ed25519',
          '-nodes',
          '-keyout',
          `${device}.key`,
          '-out',
          `${device}.csr`,
          '-subj',
          `/O=${T}/CN=${device}`,
        );
        ssl(
          'x509',
          '-req',
          '-in',
          `${device}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${device}.pem`,
          '-days',
          '2',
        );
      }
      // a device certificate from a CA the gateway does not trust
      ssl(
        'req',
        '-x509',
        '-newkey',
        'ed25519',
        '-nodes',
        '-keyout',
        'rogue.key',
        '-out',
        'rogue.pem',
        '-days',
        '2',
        '-subj',
        `/O=${T}/CN=cert-1`,
      );
    }
    const [tlsPort, wsPort] = await freePorts(2);
    gw = await startGateway(issuer.url, {
      ...(OPENSSL
        ? {
            GATEWAY_MQTTS_PORT: String(tlsPort),
            GATEWAY_TLS_CERT: `${dir.path}/server.pem`,
            GATEWAY_TLS_KEY: `${dir.path}/server.key`,
            GATEWAY_TLS_CLIENT_CA: `${dir.path}/ca.pem`,
          }
        : {}),
      GATEWAY_MQTT_WS_PORT: String(wsPort),
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await issuer?.stop();
    await dir?.remove();
  });

  it.skipIf(!OPENSSL)('serves MQTT over TLS with a token', async () => {
    expect(gw.gateway.mqttUrls.mqtts).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const client = await connectDevice(
      gw.gateway.mqttUrls.mqtts!,
      'tls-token',
      await issuer.token('tls-token', T),
      {
        ca: file('ca.pem'),
        servername: 'localhost',
        rejectUnauthorized: true,
      },
    );
    await expectBridged(gw, client, T, 'tls-token', 'telemetry');
    await client.endAsync();
  });

  it.skipIf(!OPENSSL)(
    'authenticates a device by its client certificate (CN = device, O = tenant), no token',
    async () => {
      const options = {
        ca: file('ca.pem'),
        servername: 'localhost',
        cert: file('cert-1.pem'),
        key: file('cert-1.key'),
      };
      const client = await connectDevice(gw.gateway.mqttUrls.mqtts!, 'cert-1', '', {
        ...options,
        password: undefined,
        username: undefined,
      });
      await expectBridged(gw, client, T, 'cert-1', 'ota-status');
      await client.endAsync();
      // the certificate names cert-1: it cannot be used as another device
      expect(
        await connackCode(gw.gateway.mqttUrls.mqtts!, { ...options, clientId: 'cert-1', username: 'cert-2' }),
      ).toBe(4);
      // an untrusted certificate is no identity: without a token the CONNECT is refused
      expect(
        await connackCode(gw.gateway.mqttUrls.mqtts!, {
          ca: file('ca.pem'),
          servername: 'localhost',
          cert: file('rogue.pem'),
          key: file('rogue.key'),
          clientId: 'cert-1',
        }),
      ).toBe(4);
    },
  );

  it.skipIf(!OPENSSL)('refuses a revoked certificate identity', async () => {
    const revoked: DeviceLifecycle = {
      eventId: randomUUID(),
      tenant: T,
      deviceId: 'cert-2',
      event: 'REVOKED',
      publicKey: null,
      keyId: null,
      previousKeyId: null,
      reason: 'decommissioned',
      tokensNotBefore: Date.now(),
      timestamp: Date.now(),
    };
    await gw.bus.publish(KAFKA_TOPICS.deviceLifecycle.name, [{ value: revoked }]);
    const options = {
      ca: file('ca.pem'),
      servername: 'localhost',
      cert: file('cert-2.pem'),
      key: file('cert-2.key'),
      clientId: 'cert-2',
    };
    await eventually('the revocation applied', async () =>
      (await connackCode(gw.gateway.mqttUrls.mqtts!, options)) === 5 ? true : undefined,
    );
  });

  it('serves MQTT over WebSocket', async () => {
    expect(gw.gateway.mqttUrls.ws).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const client = await connectDevice(gw.gateway.mqttUrls.ws!, 'ws-1', await issuer.token('ws-1', T));
    await expectBridged(gw, client, T, 'ws-1', 'inference');
    await client.endAsync();
  });
});
