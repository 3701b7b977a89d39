import { Injectable } from '@nestjs/common';

/** Sends a message to devices through whichever broker the gateway runs (embedded aedes or an external one). */
export interface DeviceSender {
  /** Resolves once the broker took the message (stored for offline QoS 1 sessions, retained if asked). */
  send(topic: string, payload: Buffer, options: { qos: 0 | 1; retain?: boolean }): Promise<void>;
}

/**
 * The DEVICE_SENDER the bridges inject: it forwards to the broker that attached itself at start-up (the broker in
 * turn needs the up-bridge, so it cannot be injected into it directly).
 */
@Injectable()
export class DeviceOutbox implements DeviceSender {
  private broker: DeviceSender | null = null;

  attach(broker: DeviceSender): void {
    this.broker = broker;
  }

  send(topic: string, payload: Buffer, options: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    if (!this.broker) return Promise.reject(new Error('no MQTT broker is attached yet'));
    return this.broker.send(topic, payload, options);
  }
}
