import { X509Certificate } from 'node:crypto';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import {
  Aedes,
  type AedesOptions,
  type AuthenticateError,
  type Client,
  type PublishPacket,
  type Subscription,
} from 'aedes';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';
import { Redis } from 'ioredis';
import mqemitterRedis from 'mqemitter-redis';
import { LOGGER, ReadinessRegistry, SERVICE_CONFIG, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { DeviceDirectory } from '../auth/device-directory.js';
import { LifecycleConsumer } from '../auth/lifecycle.consumer.js';
import { SessionsService, type CloseReason, type LiveSession } from '../auth/sessions.service.js';
import {
  CONNECT_REFUSALS,
  ConnectRefusedError,
  DeviceTokenVerifier,
  type ConnectRefusal,
} from '../auth/token-verifier.js';
import { authorizePublish, authorizeSubscribe, isTopicSegment, type DeviceIdentity } from '../authz/acl.js';
import { AbuseCounter, TokenBucket } from '../authz/limits.js';
import type { GatewayOwnConfig } from '../config.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { PresenceService, type DisconnectCause } from '../presence/presence.service.js';
import { GATEWAY_CONFIG, INSTANCE_ID } from '../tokens.js';
import { DeviceOutbox, type DeviceSender } from '../uplink/device-sender.js';
import { BusUnavailableError, UplinkService } from '../uplink/uplink.service.js';
import { MqttListeners, type MqttEndpoint, type MqttUrls } from './listeners.js';

/** Where accepted and refused device messages go once bridged: nothing subscribes here, devices cannot. */
const SINK_TOPIC = '$edgefl/bridged';

interface ClientState {
  session: LiveSession;
  bucket: TokenBucket;
  abuse: AbuseCounter;
  cause: DisconnectCause | null;
}

/**
 * aedes inside the gateway (embedded mode): TCP, optional TLS/mTLS and WebSocket listeners; CONNECT authenticated
 * by registry token or client certificate; every PUBLISH and SUBSCRIBE authorized; QoS 1 PUBACK only after the
 * up-bridge stored the record on the bus (aedes acknowledges after authorizePublish calls back, and reads no more
 * from that socket meanwhile: a slow bus slows exactly the devices that send). With GATEWAY_REDIS_URL, sessions,
 * retained messages and subscriptions live in Redis and messages cross replicas through a Redis emitter.
 */
@Injectable()
export class BrokerService implements DeviceSender, MqttEndpoint, OnModuleInit, BeforeApplicationShutdown {
  private aedes: Aedes | null = null;
  private redis: Redis[] = [];
  private persistence: AsyncRedisPersistence | null = null;
  private readonly listeners: MqttListeners;
  private readonly verifier: DeviceTokenVerifier;
  private readonly clients = new WeakMap<Client, ClientState>();
  private inFlight = 0;
  private draining = false;
  private sessionTimer: NodeJS.Timeout | null = null;
  private urlsValue: MqttUrls | null = null;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayOwnConfig,
    @Inject(SERVICE_CONFIG) private readonly base: BaseConfig,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly readiness: ReadinessRegistry,
    private readonly metrics: GatewayMetrics,
    private readonly sessions: SessionsService,
    private readonly directory: DeviceDirectory,
    private readonly uplink: UplinkService,
    private readonly presence: PresenceService,
    private readonly outbox: DeviceOutbox,
    private readonly lifecycle: LifecycleConsumer,
  ) {
    this.listeners = new MqttListeners(config.mqtt);
    this.verifier = new DeviceTokenVerifier(config.auth);
  }

  /** The URLs devices connect to (known once the listeners are open). */
  get urls(): MqttUrls {
    if (!this.urlsValue) throw new Error('the MQTT listeners are not open yet');
    return this.urlsValue;
  }

  async onModuleInit(): Promise<void> {
    const options: AedesOptions = {
      id: this.instanceId,
      drainTimeout: this.config.mqtt.drainTimeoutMs,
      connectTimeout: 10_000,
      authenticate: (client, username, password, done) =>
        void this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => void this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, subscription, done) => this.authorizeSubscribe(client, subscription, done),
    };
    if (this.config.redisUrl) {
      const url = this.config.redisUrl;
      const conn = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
      this.redis.push(conn);
      this.persistence = new AsyncRedisPersistence({ conn });
      // aedes-persistence-redis 11 returns retained messages as an async iterable where aedes 1.2 pipes a stream
      // (its memory persistence returns Readable.from(...)): adapt that one method the same way
      const retained = this.persistence.createRetainedStreamCombi.bind(this.persistence);
      this.persistence.createRetainedStreamCombi = (patterns) => Readable.from(retained(patterns));
      options.persistence = this.persistence;
      options.mq = mqemitterRedis({ connectionString: url });
      this.readiness.register('redis', () =>
        conn.status === 'ready' ? { ready: true } : { ready: false, detail: `redis ${conn.status}` },
      );
    }
    this.aedes = await Aedes.createBroker(options);
    this.outbox.attach(this);
    this.aedes.on('clientReady', (client) => this.onReady(client));
    this.aedes.on('clientDisconnect', (client) => this.onDisconnect(client));
    this.aedes.on('keepaliveTimeout', (client) => {
      const state = this.clients.get(client);
      if (state) state.cause ??= 'keepalive';
    });
    this.aedes.on('clientError', (client, error) => {
      const state = this.clients.get(client);
      if (state) state.cause ??= 'dropped';
      this.logger.debug({ clientId: client.id, err: error }, 'client error');
    });
    // the listeners open here, before any consumer starts (a taken port must fail the boot with nothing left
    // running); CONNECTs wait for the revocations replay (refused with 3 until then)
    const aedes = this.aedes;
    try {
      this.urlsValue = await this.listeners.open((stream, request) => aedes.handle(stream, request));
    } catch (error) {
      // a port taken: nothing else will close the broker (the app never started), and its timers would keep the
      // process alive after the boot error
      this.listeners.stopAccepting();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await this.persistence?.destroy().catch(() => undefined);
      await Promise.all(this.redis.map((r) => r.quit().catch(() => undefined)));
      throw error;
    }
    this.sessionTimer = setInterval(() => this.sessions.enforce(Date.now()), this.config.auth.sessionCheckMs);
    this.sessionTimer.unref();
    this.logger.info(
      { ...this.urlsValue, cluster: this.config.redisUrl ? 'redis' : 'none' },
      'mqtt listening',
    );
    this.readiness.register('mqtt', () =>
      this.urlsValue && this.aedes && !this.aedes.closed
        ? { ready: true, detail: { ...this.urlsValue, connections: this.sessions.size } }
        : { ready: false, detail: 'MQTT listeners not open' },
    );
  }

  /** DeviceSender: publishes as the broker (retained messages are stored, offline QoS 1 sessions queue it). */
  send(topic: string, payload: Buffer, options: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || aedes.closed) return Promise.reject(new Error('the broker is closed'));
    return new Promise((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload, qos: options.qos, retain: options.retain ?? false, dup: false },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }

  /**
   * The orderly drain: stop accepting connections and refuse new CONNECTs, let in-flight QoS 1 publishes reach the
   * bus (and be acknowledged), close every session (presence OFFLINE, GATEWAY_SHUTDOWN), close the broker.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.sessionTimer) clearInterval(this.sessionTimer);
    this.listeners.stopAccepting();
    const until = Date.now() + Math.max(1_000, this.base.shutdownTimeoutMs / 2);
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.sessions.closeAll('gateway_shutdown');
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()));
    this.listeners.destroyRemaining();
    await this.presence.flush();
    await this.persistence?.destroy().catch(() => undefined);
    await Promise.all(this.redis.map((r) => r.quit().catch(() => undefined)));
    this.logger.info({ inFlightLeft: this.inFlight }, 'mqtt drained');
  }

  // ── CONNECT ───────────────────────────────────────────────────────────────────────────────────────────────────
  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): Promise<void> {
    try {
      if (this.draining) throw new ConnectRefusedError('draining', 'the gateway is shutting down');
      if (!(await this.lifecycle.ready()))
        throw new ConnectRefusedError('starting', 'the gateway is still reading the registry’s revocations');
      const { identity, certificateKey } = await this.identify(client, username, password);
      if (client.id !== identity.deviceId)
        throw new ConnectRefusedError('client_id_mismatch', 'the MQTT client id must be the device id');
      const lifecycle = this.directory.refusal(identity, certificateKey);
      if (lifecycle)
        throw new ConnectRefusedError(
          lifecycle,
          `the device's credentials are ${lifecycle.replace('_', ' ')}`,
        );
      const now = Date.now();
      const state: ClientState = {
        session: {
          identity,
          certificateKey,
          close: (reason: CloseReason) => {
            state.cause ??= reason;
            this.metrics.disconnects.inc({ reason });
            client.close();
          },
        },
        bucket: new TokenBucket(this.config.limits.ratePerS, this.config.limits.rateBurst, now),
        abuse: new AbuseCounter(this.config.limits.abuseLimit, this.config.limits.abuseWindowMs),
        cause: null,
      };
      this.clients.set(client, state);
      done(null, true);
    } catch (error) {
      const refusal: ConnectRefusal = error instanceof ConnectRefusedError ? error.reason : 'malformed_token';
      this.metrics.refused.inc({ stage: 'connect', reason: refusal });
      this.logger.info({ clientId: client.id.slice(0, 128), reason: refusal }, 'connect refused');
      const refused = new Error(`connect refused: ${refusal}`) as AuthenticateError;
      refused.returnCode = CONNECT_REFUSALS[refusal];
      done(refused, null);
    }
  }

  /** A verified client certificate (mutual TLS) if the connection has one, else the token in the password. */
  private async identify(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<{ identity: DeviceIdentity; certificateKey: string | null }> {
    const conn = client.conn;
    if (conn instanceof TLSSocket && conn.authorized) {
      const peer = conn.getPeerCertificate();
      if (peer && peer.raw) {
        const identity = certificateIdentity(peer.raw);
        if (username && username !== identity.identity.deviceId)
          throw new ConnectRefusedError('username_mismatch', 'the username is not the certificate subject');
        return identity;
      }
    }
    if (this.config.mqtt.tls?.clientCert === 'required' && conn instanceof TLSSocket)
      throw new ConnectRefusedError('bad_certificate', 'a client certificate is required');
    if (!username || !password || password.length === 0)
      throw new ConnectRefusedError(
        'missing_credentials',
        'username (device id) and password (token) are required',
      );
    if (password.length > 8192) throw new ConnectRefusedError('malformed_token', 'the token is too long');
    const identity = await this.verifier.verify(username, password.toString('utf8'), Date.now());
    return { identity, certificateKey: null };
  }

  private onReady(client: Client): void {
    const state = this.clients.get(client);
    if (!state) return;
    this.sessions.add(client.id, state.session);
    this.metrics.connections.inc({ tenant: state.session.identity.tenant });
    this.presence.online(state.session.identity);
  }

  private onDisconnect(client: Client): void {
    const state = this.clients.get(client);
    if (!state) return;
    this.sessions.remove(client.id, state.session);
    this.metrics.connections.dec({ tenant: state.session.identity.tenant });
    this.presence.offline(state.session.identity, state.cause ?? 'clean');
  }

  // ── PUBLISH ───────────────────────────────────────────────────────────────────────────────────────────────────
  private async authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    done: (error?: Error | null) => void,
  ): Promise<void> {
    const state = client ? this.clients.get(client) : undefined;
    if (!client || !state) return done(new Error('not an authenticated device'));
    const receivedAt = Date.now();
    const identity = state.session.identity;
    const decision = authorizePublish(identity, packet.topic, packet.retain);
    const sink = () => {
      packet.topic = SINK_TOPIC;
      packet.retain = false;
    };
    if (!decision.ok) {
      this.metrics.refused.inc({ stage: 'publish', reason: decision.reason });
      sink();
      this.abused(state);
      return done(null);
    }
    if (!state.bucket.take(receivedAt)) {
      await this.uplink.refuse(
        identity,
        decision.channel,
        'rate_limited',
        'over the per-device message rate',
      );
      sink();
      this.abused(state);
      return done(null);
    }
    this.inFlight++;
    try {
      const result = await this.uplink.handle(
        identity,
        decision.channel,
        packet.topic,
        packet.payload as Buffer,
        receivedAt,
      );
      if (!result.accepted) this.abused(state);
      sink();
      done(null);
    } catch (error) {
      // not stored, so not acknowledged: the device sends it again on its next connection
      this.logger.warn(
        { err: error, deviceId: identity.deviceId },
        'publish not bridged; closing the connection',
      );
      if (error instanceof BusUnavailableError) state.cause ??= 'bus_unavailable';
      this.metrics.disconnects.inc({ reason: 'bus_unavailable' });
      done(error as Error);
    } finally {
      this.inFlight--;
      this.metrics.backpressure.inc((Date.now() - receivedAt) / 1000);
    }
  }

  // ── SUBSCRIBE ─────────────────────────────────────────────────────────────────────────────────────────────────
  private authorizeSubscribe(
    client: Client,
    subscription: Subscription,
    done: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const state = this.clients.get(client);
    if (!state) return done(new Error('not an authenticated device'));
    const decision = authorizeSubscribe(state.session.identity, subscription.topic);
    if (decision.ok) return done(null, subscription);
    this.metrics.refused.inc({ stage: 'subscribe', reason: decision.reason });
    this.abused(state);
    done(null, null); // SUBACK 0x80 for this filter; the others of the packet are unaffected
  }

  private abused(state: ClientState): void {
    if (state.abuse.record(Date.now())) state.session.close('abuse');
  }
}

/**
 * The identity a verified client certificate names: subject CN = device id, O = tenant (the device's Ed25519 key
 * is compared with the registry's current one after a rotation).
 */
export function certificateIdentity(raw: Buffer): {
  identity: DeviceIdentity;
  certificateKey: string | null;
} {
  const cert = new X509Certificate(raw);
  const subject = new Map(
    cert.subject.split('\n').map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)] as const;
    }),
  );
  const deviceId = subject.get('CN');
  const tenant = subject.get('O');
  if (!isTopicSegment(deviceId) || !isTopicSegment(tenant))
    throw new ConnectRefusedError(
      'bad_certificate',
      'the certificate subject needs CN=<device id> and O=<tenant>',
    );
  const key = cert.publicKey;
  const certificateKey =
    key.asymmetricKeyType === 'ed25519'
      ? ((key.export({ format: 'jwk' }) as { x?: string }).x ?? null)
      : null;
  return {
    identity: { tenant, deviceId, group: null, via: 'certificate', issuedAt: null, expiresAt: null },
    certificateKey,
  };
}
