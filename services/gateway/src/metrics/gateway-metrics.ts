import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@edgefl/service-kit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The gateway's Prometheus metrics (base units, `_total` counters, never a device id as a label): connections by
 * tenant, messages in/out by channel, refusals by stage and reason, bridge latency, backpressure time.
 */
@Injectable()
export class GatewayMetrics {
  readonly connections: Gauge<'tenant'>;
  readonly messagesIn: Counter<'channel'>;
  readonly messagesOut: Counter<'channel'>;
  readonly refused: Counter<'stage' | 'reason'>;
  readonly deadLetters: Counter<'reason'>;
  readonly disconnects: Counter<'reason'>;
  readonly bridgeLatency: Histogram<'channel'>;
  readonly backpressure: Counter;
  readonly revocations: Counter<'event'>;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const registers = [registry];
    this.connections = new Gauge({
      name: 'edgefl_gateway_connections',
      help: 'Authenticated MQTT connections, by tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.messagesIn = new Counter({
      name: 'edgefl_gateway_messages_in_total',
      help: 'Device messages accepted onto the bus, by MQTT channel',
      labelNames: ['channel'],
      registers,
    });
    this.messagesOut = new Counter({
      name: 'edgefl_gateway_messages_out_total',
      help: 'Messages sent to devices (down channels, replies, errors), by MQTT channel',
      labelNames: ['channel'],
      registers,
    });
    this.refused = new Counter({
      name: 'edgefl_gateway_refused_total',
      help: 'Refused connects, publishes and subscriptions, by stage and reason',
      labelNames: ['stage', 'reason'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'edgefl_gateway_dead_letters_total',
      help: 'Device payloads sent to the dead-letter topic, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'edgefl_gateway_disconnects_total',
      help: 'Connections closed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.bridgeLatency = new Histogram({
      name: 'edgefl_gateway_bridge_latency_seconds',
      help: 'From a device message received to the bus accepting its record',
      labelNames: ['channel'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.backpressure = new Counter({
      name: 'edgefl_gateway_backpressure_seconds_total',
      help: 'Time device sockets were not read because their messages waited for the bus',
      registers,
    });
    this.revocations = new Counter({
      name: 'edgefl_gateway_lifecycle_events_total',
      help: 'Device lifecycle events applied (registered, revoked, key rotated, updated)',
      labelNames: ['event'],
      registers,
    });
  }
}
