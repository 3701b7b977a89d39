import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BusObserver, EventBus } from './port.js';

export interface BusMetrics {
  /** Hand this to the adapter (`observer` option). */
  observer: BusObserver;
  /** Groups and topics whose lag the gauge reports when scraped. */
  trackLag(group: string, topics: readonly string[]): void;
  /** The bus the lag gauge asks (set once the bus exists). */
  attach(bus: EventBus): void;
}

/**
 * Prometheus metrics of the bus on the given registry. Base units, `_total` counters, labels are topic, group,
 * outcome and reason code only (never device ids or keys).
 */
export function createBusMetrics(registry: Registry): BusMetrics {
  const registers = [registry];
  const published = new Counter({
    name: 'edgefl_bus_published_total',
    help: 'Records published, by topic.',
    labelNames: ['topic'],
    registers,
  });
  const consumed = new Counter({
    name: 'edgefl_bus_consumed_total',
    help: 'Record deliveries by outcome (ok, retry, dead_letter, duplicate).',
    labelNames: ['topic', 'group', 'outcome'],
    registers,
  });
  const deadLettered = new Counter({
    name: 'edgefl_bus_dead_lettered_total',
    help: 'Records sent to the dead-letter topic, by reason code.',
    labelNames: ['topic', 'group', 'reason_code'],
    registers,
  });
  const duration = new Histogram({
    name: 'edgefl_bus_handler_duration_seconds',
    help: 'Time a handler took per delivery attempt.',
    labelNames: ['topic', 'group'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers,
  });
  const lockWaits = new Counter({
    name: 'edgefl_bus_lock_waits_total',
    help: 'Tries for the embedded bus file write lock that found it held by another process (each retried).',
    registers,
  });
  const unowned = new Gauge({
    name: 'edgefl_bus_unowned_partitions',
    help: 'Kafka: partitions of a consumed topic that no member of the group owns (at the last readiness check).',
    labelNames: ['topic', 'group'],
    registers,
  });
  const restarts = new Counter({
    name: 'edgefl_bus_consumer_restarts_total',
    help: 'Kafka: crashes of a group consumer, each followed by a restart.',
    labelNames: ['group'],
    registers,
  });
  const drift = new Counter({
    name: 'edgefl_bus_topic_config_drift_total',
    help: "Kafka: settings of existing topics that differ from the catalog's, seen by ensureTopics (never overwritten).",
    labelNames: ['topic', 'setting'],
    registers,
  });
  const tracked = new Map<string, Set<string>>();
  let bus: EventBus | null = null;
  new Gauge({
    name: 'edgefl_bus_consumer_lag',
    help: 'Records after the committed offset, summed over partitions.',
    labelNames: ['topic', 'group'],
    registers,
    async collect() {
      this.reset();
      if (!bus) return;
      for (const [group, topics] of tracked) {
        try {
          const lags = await bus.consumerLag(group, [...topics]);
          const sums = new Map<string, number>();
          for (const l of lags) sums.set(l.topic, (sums.get(l.topic) ?? 0) + l.lag);
          for (const [topic, lag] of sums) this.set({ topic, group }, lag);
        } catch {
          // A bus that cannot answer now (closing, broker away): the gauge stays empty for this group.
        }
      }
    },
  });
  return {
    observer: {
      published: (topic, count) => published.inc({ topic }, count),
      consumed: (topic, group, outcome, count) => consumed.inc({ topic, group, outcome }, count),
      deadLettered: (topic, group, reasonCode) => deadLettered.inc({ topic, group, reason_code: reasonCode }),
      handlerDuration: (topic, group, seconds) => duration.observe({ topic, group }, seconds),
      lockWait: () => lockWaits.inc(),
      unownedPartitions: (group, topic, count) => unowned.set({ topic, group }, count),
      consumerRestarted: (group) => restarts.inc({ group }),
      topicDrift: (topic, setting) => drift.inc({ topic, setting }),
    },
    trackLag(group, topics) {
      const set = tracked.get(group) ?? new Set<string>();
      for (const t of topics) set.add(t);
      tracked.set(group, set);
    },
    attach(b) {
      bus = b;
    },
  };
}
