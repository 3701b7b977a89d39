import type { MessageAck, SecAggMessage } from '@edgefl/contracts/edge';
import type { Ed25519SigningKey } from '@edgefl/keys';
import { DeviceError } from '../errors.js';
import type { SecAggChannel } from '../fl/federated-client.js';
import type { MqttLink } from './mqtt-link.js';

/** Messages kept per round before anyone listens (the aggregator's first request may beat the invitation). */
const EARLY_PER_ROUND = 16;
/** Rounds whose early messages are kept (oldest forgotten first). */
const EARLY_ROUNDS = 8;

export interface MqttSecAggChannelOptions {
  link: () => MqttLink | null;
  key: Ed25519SigningKey;
  /** How long a reply waits for the gateway's MessageAck (default 30 s). */
  ackTimeoutMs?: number;
}

/**
 * The device's `secagg` channel over its MQTT link: replies published with QoS 1 on `…/secagg` and answered by the
 * gateway's MessageAck on `…/secagg/reply` (correlation id = the event id); the aggregator's requests delivered to
 * the listener of their round. Requests for a round nobody listens to yet are kept, a few per round, and handed
 * over when the round's participant subscribes; beyond that they are dropped and counted.
 */
export class MqttSecAggChannel implements SecAggChannel {
  readonly #o: MqttSecAggChannelOptions;
  readonly #listeners = new Map<string, (message: SecAggMessage) => void>();
  readonly #early = new Map<string, SecAggMessage[]>();
  readonly stats = { delivered: 0, early: 0, dropped: 0 };

  constructor(options: MqttSecAggChannelOptions) {
    this.#o = options;
  }

  /** Called by the link for every message on the device's `secagg` topic. */
  deliver(message: SecAggMessage): void {
    const listener = this.#listeners.get(message.roundId);
    if (listener) {
      this.stats.delivered++;
      listener(message);
      return;
    }
    let kept = this.#early.get(message.roundId);
    if (!kept) {
      if (this.#early.size >= EARLY_ROUNDS) this.#early.delete(this.#early.keys().next().value!);
      this.#early.set(message.roundId, (kept = []));
    }
    if (kept.length >= EARLY_PER_ROUND) {
      this.stats.dropped++;
      return;
    }
    this.stats.early++;
    kept.push(message);
  }

  onMessage(roundId: string, listener: (message: SecAggMessage) => void): () => void {
    this.#listeners.set(roundId, listener);
    const early = this.#early.get(roundId) ?? [];
    this.#early.delete(roundId);
    for (const m of early) {
      this.stats.delivered++;
      listener(m);
    }
    return () => {
      if (this.#listeners.get(roundId) === listener) this.#listeners.delete(roundId);
    };
  }

  async send(message: SecAggMessage, signal: AbortSignal): Promise<MessageAck> {
    const link = this.#o.link();
    if (!link) throw new DeviceError('transport', 'no MQTT connection for the secure-aggregation message');
    return link.request<MessageAck>(
      link.topic('secagg'),
      link.encode('io.edgefl.fl.SecAggMessage', message),
      message.eventId,
      this.#o.ackTimeoutMs ?? 30_000,
      signal,
    );
  }

  sign(bytes: Uint8Array): Uint8Array {
    return this.#o.key.sign(bytes);
  }
}
