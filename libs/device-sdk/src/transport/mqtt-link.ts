import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  mqttBroadcastTopic,
  mqttDeviceTopic,
  parseMqttTopic,
  SingleObjectCodec,
  type InferenceReply,
  type MessageAck,
  type MqttChannel,
  type RecordName,
  type RecordTypes,
  type ReleaseManifest,
  type RoundEvent,
  type SecAggMessage,
} from '@edgefl/contracts/edge';
import { DeviceError } from '../errors.js';

/** One codec for every device of a process (its schema tables are the expensive part). */
let sharedCodec: SingleObjectCodec | null = null;
export function deviceCodec(): SingleObjectCodec {
  sharedCodec ??= new SingleObjectCodec();
  return sharedCodec;
}

export interface MqttLinkOptions {
  url: string;
  tenant: string;
  deviceId: string;
  /** The current device token (MQTT password); read again on every reconnect. */
  password: () => string;
  /** mqtt.js options to add (TLS material, keepalive, …). */
  clientOptions?: IClientOptions;
  connectTimeoutMs?: number;
}

export interface MqttLinkHandlers {
  release?: (message: ReleaseManifest, scope: 'device' | 'broadcast') => void;
  round?: (event: RoundEvent, scope: 'device' | 'broadcast') => void;
  secagg?: (message: SecAggMessage) => void;
}

export interface MqttLinkStats {
  /** Inbound payloads that did not decode or arrived on an unexpected topic (dropped). */
  badInbound: number;
  /** Replies that matched no waiting request (late or unknown correlation id). */
  unmatchedReplies: number;
  published: number;
}

type Reply = MessageAck | InferenceReply;

/**
 * The device's MQTT connection (MQTT 3.1.1 with aedes): username = device id, password = the registry-issued
 * token. Subscribes to its own down channels and replies and to the tenant broadcast; decodes Avro single-object
 * payloads; request/reply the 3.1.1 way (a correlation id in the payload, the answer on `<topic>/reply`).
 */
export class MqttLink {
  readonly client: MqttClient;
  readonly stats: MqttLinkStats = { badInbound: 0, unmatchedReplies: 0, published: 0 };
  readonly #o: MqttLinkOptions;
  readonly #codec = deviceCodec();
  readonly #waiting = new Map<string, (reply: Reply | Error) => void>();

  #handlers: MqttLinkHandlers = {};

  private constructor(options: MqttLinkOptions, client: MqttClient) {
    this.#o = options;
    this.client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    client.on('connect', () => void this.#subscribe());
    client.on('reconnect', () => {
      client.options.password = options.password();
    });
    client.on('error', () => {}); // surfaced through 'close'/'offline' and connection state
  }

  /** Connects (rejecting after connectTimeoutMs) and subscribes. */
  static async connect(options: MqttLinkOptions, handlers: MqttLinkHandlers = {}): Promise<MqttLink> {
    const client = mqtt.connect(options.url, {
      protocolVersion: 4,
      clientId: options.deviceId,
      username: options.deviceId,
      password: options.password(),
      clean: true,
      reconnectPeriod: 1_000,
      connectTimeout: options.connectTimeoutMs ?? 15_000,
      keepalive: 30,
      ...options.clientOptions,
    });
    const link = new MqttLink(options, client);
    link.#handlers = handlers;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        reject(
          new DeviceError(
            'transport',
            `no MQTT connection to ${options.url} within ${options.connectTimeoutMs ?? 15_000} ms`,
          ),
        );
      }, options.connectTimeoutMs ?? 15_000);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      client.once('error', (error) => {
        clearTimeout(timer);
        client.end(true);
        reject(new DeviceError('transport', `MQTT connection refused: ${error.message}`));
      });
    });
    await link.#subscribe();
    return link;
  }

  setHandlers(handlers: MqttLinkHandlers): void {
    this.#handlers = handlers;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  topic(channel: MqttChannel, reply = false): string {
    return mqttDeviceTopic(this.#o.tenant, this.#o.deviceId, channel, { reply });
  }

  async #subscribe(): Promise<void> {
    const t = this.#o.tenant;
    await this.client
      .subscribeAsync({
        [this.topic('release')]: { qos: 1 },
        [this.topic('round')]: { qos: 1 },
        [this.topic('secagg')]: { qos: 1 },
        [this.topic('fl-update', true)]: { qos: 1 },
        [this.topic('secagg', true)]: { qos: 1 },
        [this.topic('infer', true)]: { qos: 1 },
        [mqttBroadcastTopic(t, 'release')]: { qos: 1 },
        [mqttBroadcastTopic(t, 'round')]: { qos: 1 },
      })
      .catch(() => {});
  }

  #onMessage(topic: string, payload: Buffer): void {
    try {
      const parsed = parseMqttTopic(topic);
      if (
        parsed.tenant !== this.#o.tenant ||
        (parsed.scope === 'device' && parsed.deviceId !== this.#o.deviceId)
      )
        throw new Error('foreign topic');
      const decoded = this.#codec.decode(payload);
      if (parsed.scope === 'device' && parsed.reply) {
        const reply = decoded.value as Reply;
        if (
          decoded.schemaName !== 'io.edgefl.device.MessageAck' &&
          decoded.schemaName !== 'io.edgefl.inference.InferenceReply'
        )
          throw new Error('unexpected reply schema');
        const waiter = this.#waiting.get(reply.correlationId);
        if (waiter) waiter(reply);
        else this.stats.unmatchedReplies++;
        return;
      }
      const scope = parsed.scope;
      if (parsed.channel === 'release' && decoded.schemaName === 'io.edgefl.registry.ReleaseManifest')
        this.#handlers.release?.(decoded.value, scope);
      else if (parsed.channel === 'round' && decoded.schemaName === 'io.edgefl.fl.RoundEvent')
        this.#handlers.round?.(decoded.value, scope);
      else if (parsed.channel === 'secagg' && decoded.schemaName === 'io.edgefl.fl.SecAggMessage')
        this.#handlers.secagg?.(decoded.value);
      else throw new Error('schema does not match the channel');
    } catch {
      this.stats.badInbound++;
    }
  }

  encode<N extends RecordName>(schema: N, value: RecordTypes[N]): Buffer {
    return this.#codec.encode(schema, value);
  }

  /** Publishes with the channel's QoS; for QoS 1 resolves on the broker's PUBACK. */
  async publish(topic: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    await this.client.publishAsync(
      topic,
      Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      { qos },
    );
    this.stats.published++;
  }

  /**
   * Waits for the reply carrying one of `correlationIds` on a reply topic; rejects with DeviceError 'timeout' after
   * timeoutMs or 'cancelled' when the signal aborts. Register before publishing the request.
   */
  waitReply<R extends Reply>(
    correlationIds: readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const done = (result: Reply | Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const id of correlationIds) this.#waiting.delete(id);
        if (result instanceof Error) reject(result);
        else resolve(result as R);
      };
      const timer = setTimeout(
        () => done(new DeviceError('timeout', `no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => done(new DeviceError('cancelled', 'the request was cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      for (const id of correlationIds) this.#waiting.set(id, done);
      if (signal?.aborted) onAbort();
    });
  }

  /** Publishes a request (QoS 1) and waits for the reply carrying `correlationId` on `<topic>/reply`. */
  async request<R extends Reply>(
    topic: string,
    payload: Uint8Array,
    correlationId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<R> {
    const reply = this.waitReply<R>([correlationId], timeoutMs, signal);
    this.publish(topic, payload, 1).catch(() => {}); // an unsent request ends in the timeout
    return reply;
  }

  newCorrelationId(): string {
    return randomUUID();
  }

  async close(): Promise<void> {
    for (const [id, waiter] of this.#waiting) {
      this.#waiting.delete(id);
      waiter(new DeviceError('cancelled', 'the MQTT link closed before the reply'));
    }
    await this.client.endAsync();
  }
}
