import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { MQTT_ROOT, parseMqttTopic } from '@edgefl/contracts';
import { LOGGER, ReadinessRegistry } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { DeviceDirectory } from '../auth/device-directory.js';
import { UP_CHANNELS, type DeviceIdentity } from '../authz/acl.js';
import type { MqttEndpoint, MqttUrls } from '../broker/listeners.js';
import type { GatewayOwnConfig } from '../config.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { GATEWAY_CONFIG } from '../tokens.js';
import { DeviceOutbox, type DeviceSender } from '../uplink/device-sender.js';
import { UplinkService } from '../uplink/uplink.service.js';

/** MQTT 5 PUBACK reason code Success (OASIS MQTT 5.0 §3.4.2.1). */
const SUCCESS = 0x00;

/**
 * External-broker mode: instead of embedding aedes, bridge an external broker (Mosquitto, EMQX, HiveMQ) over mqtt.js
 * as an MQTT 5 client. Every up channel is read through a shared subscription `$share/<group>/edgefl/+/+/<channel>`
 * so N gateway replicas split the traffic; each message is acknowledged (PUBACK) only after the up-bridge stored it on
 * the bus. The broker authenticates devices and enforces the topic ACL (infra/mosquitto); the gateway trusts the
 * topic for who sent a message, and still refuses payloads naming another tenant or device. Down traffic is published
 * to the broker, which delivers and retains it.
 */
@Injectable()
export class ExternalBrokerService
  implements DeviceSender, MqttEndpoint, OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private client: MqttClient | null = null;
  private inFlight = 0;
  private draining = false;
  private readonly external: NonNullable<GatewayOwnConfig['external']>;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayOwnConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly readiness: ReadinessRegistry,
    private readonly metrics: GatewayMetrics,
    private readonly uplink: UplinkService,
    private readonly outbox: DeviceOutbox,
    private readonly directory: DeviceDirectory,
  ) {
    this.external = config.external!;
  }

  get urls(): MqttUrls {
    const url = new URL(this.external.url);
    url.username = '';
    url.password = '';
    const plain = url.toString().replace(/\/$/, '');
    return {
      mqtt: plain,
      mqtts: url.protocol === 'mqtts:' ? plain : null,
      ws: url.protocol.startsWith('ws') ? plain : null,
    };
  }

  /** The shared-subscription filters of the up channels. */
  get filters(): string[] {
    return UP_CHANNELS.map((channel) => `$share/${this.external.shareGroup}/${MQTT_ROOT}/+/+/${channel}`);
  }

  onModuleInit(): void {
    this.outbox.attach(this);
    this.readiness.register('mqtt', () =>
      this.client?.connected
        ? { ready: true, detail: { broker: this.urls.mqtt, mode: 'external' } }
        : { ready: false, detail: `not connected to ${this.urls.mqtt}` },
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    const options: IClientOptions = {
      protocolVersion: 5,
      // a stable id with a lasting session: QoS 1 messages not yet acknowledged are delivered again after a reconnect
      clientId: this.external.clientId,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      username: this.external.username,
      ...(this.external.password ? { password: this.external.password } : {}),
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      customHandleAcks: (topic, message, _packet, done) => void this.onMessage(topic, message, done),
    };
    const client = await connectAsync(this.external.url, options);
    this.client = client;
    client.on('error', (error) => this.logger.warn({ err: error }, 'external broker error'));
    client.on('reconnect', () =>
      this.logger.info({ broker: this.urls.mqtt }, 'reconnecting to the external broker'),
    );
    const granted = await client.subscribeAsync(
      Object.fromEntries(this.filters.map((topic) => [topic, { qos: 1 as const }])),
    );
    const refused = granted.filter((g) => g.qos > 2);
    if (refused.length > 0)
      throw new Error(
        `the external broker refused the gateway's subscriptions (${refused.map((g) => g.topic).join(', ')}): check its ACL`,
      );
    this.logger.info({ broker: this.urls.mqtt, filters: this.filters }, 'bridging the external broker');
  }

  send(topic: string, payload: Buffer, options: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('not connected to the external broker'));
    return client
      .publishAsync(topic, payload, { qos: options.qos, retain: options.retain ?? false })
      .then(() => undefined);
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.draining || !this.client) return;
    this.draining = true;
    const client = this.client;
    await client.unsubscribeAsync(this.filters).catch(() => undefined);
    const until = Date.now() + 5_000;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await client.endAsync();
  }

  private async onMessage(
    topic: string,
    payload: Buffer,
    done: (error: Error | number, code?: number) => void,
  ): Promise<void> {
    if (this.draining) return; // not acknowledged: the broker redelivers it to another replica or after restart
    const receivedAt = Date.now();
    let identity: DeviceIdentity;
    let channel;
    try {
      const parsed = parseMqttTopic(topic);
      if (parsed.scope !== 'device' || parsed.reply || !UP_CHANNELS.includes(parsed.channel))
        throw new Error('not an up topic');
      channel = parsed.channel;
      identity = {
        tenant: parsed.tenant,
        deviceId: parsed.deviceId,
        group: null,
        via: 'broker',
        issuedAt: null,
        expiresAt: null,
      };
    } catch {
      this.metrics.refused.inc({ stage: 'publish', reason: 'topic_malformed' });
      return done(SUCCESS); // nothing to store; acknowledged so the broker does not send it again
    }
    // device ids are global: where the registry told us the device's tenant, a topic naming another is refused
    // (defence in depth behind the broker's ACL), and so is a revoked device the broker still lets in
    const known = this.directory.tenantOf(identity.deviceId);
    const refusal =
      known !== null && known !== identity.tenant ? 'other_tenant' : this.directory.refusal(identity);
    if (refusal) {
      this.metrics.refused.inc({ stage: 'publish', reason: refusal });
      return done(SUCCESS);
    }
    this.inFlight++;
    try {
      await this.uplink.handle(identity, channel, topic, payload, receivedAt);
      done(SUCCESS);
    } catch (error) {
      // not stored: drop the connection without acknowledging, so the broker delivers the message again
      this.logger.warn({ err: error }, 'message not bridged; reconnecting to the external broker');
      this.metrics.disconnects.inc({ reason: 'bus_unavailable' });
      this.client?.stream.destroy();
    } finally {
      this.inFlight--;
    }
  }
}
