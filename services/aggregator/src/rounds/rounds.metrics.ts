import { Counter, Histogram, type Registry } from 'prom-client';

/** The aggregator's own metrics (base units, `_total` counters, no device or round id as a label). */
export class RoundMetrics {
  readonly rounds: Counter<'outcome'>;
  readonly updates: Counter<'verdict' | 'reason'>;
  readonly aggregationSeconds: Histogram;
  readonly epsilonSpent: Counter;
  readonly secAggMessages: Counter<'phase' | 'verdict' | 'reason'>;
  readonly secAggDropouts: Counter<'phase'>;

  constructor(registry: Registry) {
    this.rounds = new Counter({
      name: 'edgefl_aggregator_rounds_total',
      help: 'Rounds by outcome (opened, refused, succeeded, failed, cancelled)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.updates = new Counter({
      name: 'edgefl_aggregator_updates_total',
      help: 'Updates received, by verdict and rejection reason',
      labelNames: ['verdict', 'reason'],
      registers: [registry],
    });
    this.aggregationSeconds = new Histogram({
      name: 'edgefl_aggregator_aggregation_seconds',
      help: 'Time from close to a stored aggregate',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 120],
      registers: [registry],
    });
    this.epsilonSpent = new Counter({
      name: 'edgefl_aggregator_epsilon_spent_total',
      help: 'Sum of the ε charged to rounds at opening',
      registers: [registry],
    });
    this.secAggMessages = new Counter({
      name: 'edgefl_aggregator_secagg_messages_total',
      help: 'Secure-aggregation device messages, by phase, verdict and refusal reason',
      labelNames: ['phase', 'verdict', 'reason'],
      registers: [registry],
    });
    this.secAggDropouts = new Counter({
      name: 'edgefl_aggregator_secagg_dropouts_total',
      help: 'Devices that dropped out of a secure-aggregation phase (no answer by its end)',
      labelNames: ['phase'],
      registers: [registry],
    });
  }
}
