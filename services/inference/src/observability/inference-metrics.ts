import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Latency buckets (seconds): sub-millisecond resolution where a cloud-tier MLP answers. */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** The inference tier's Prometheus metrics (base units, `_total` counters, no device id as a label). */
export class InferenceMetrics {
  readonly requests: Counter<'model' | 'version' | 'protocol' | 'outcome'>;
  readonly latency: Histogram<'model' | 'version' | 'arm'>;
  readonly errors: Counter<'protocol' | 'reason'>;
  readonly batchRows: Histogram<'model'>;
  readonly queueDepth: Gauge<'model' | 'version'>;
  readonly cache: Counter<'result'>;
  readonly modelLoads: Counter<'outcome' | 'reason'>;
  readonly swaps: Counter<'model'>;
  readonly logsPublished: Counter;
  readonly logsDropped: Counter<'reason'>;
  readonly escalations: Counter<'outcome'>;
  readonly armRequests: Counter<'model' | 'arm'>;
  readonly shadow: Counter<'model' | 'outcome'>;
  readonly shadowLatency: Histogram<'model' | 'role'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'edgefl_inference_requests_total',
      help: 'Inference requests answered, by model, version, protocol (http, grpc, bus) and outcome (ok, error)',
      labelNames: ['model', 'version', 'protocol', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'edgefl_inference_request_duration_seconds',
      help: 'Time from a request being accepted to its answer, by model, version and A/B arm',
      labelNames: ['model', 'version', 'arm'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: 'edgefl_inference_errors_total',
      help: 'Refused or failed inference requests, by protocol and reason (bad-input, not-found, overloaded, …)',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.batchRows = new Histogram({
      name: 'edgefl_inference_batch_size',
      help: 'Rows per session run (dynamic batching)',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'edgefl_inference_queue_depth',
      help: 'Requests waiting for a session, per model version',
      labelNames: ['model', 'version'],
      registers,
    });
    this.cache = new Counter({
      name: 'edgefl_inference_cache_total',
      help: 'Result cache look-ups by result (hit, miss); hit rate = hit / (hit + miss)',
      labelNames: ['result'],
      registers,
    });
    this.modelLoads = new Counter({
      name: 'edgefl_inference_model_loads_total',
      help: 'Model versions loaded or refused (reason: bad-signature, hash-mismatch, validation-failed, …)',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.swaps = new Counter({
      name: 'edgefl_inference_model_swaps_total',
      help: 'Hot swaps to a new serving version',
      labelNames: ['model'],
      registers,
    });
    this.logsPublished = new Counter({
      name: 'edgefl_inference_logs_published_total',
      help: 'Inference logs published to the bus',
      registers,
    });
    this.logsDropped = new Counter({
      name: 'edgefl_inference_logs_dropped_total',
      help: 'Inference logs dropped (buffer full, publish failed after retries)',
      labelNames: ['reason'],
      registers,
    });
    this.escalations = new Counter({
      name: 'edgefl_inference_escalations_total',
      help: 'InferenceRequests from devices answered on the bus, by outcome (ok or the error code)',
      labelNames: ['outcome'],
      registers,
    });
    this.armRequests = new Counter({
      name: 'edgefl_inference_ab_requests_total',
      help: 'Requests answered per A/B arm',
      labelNames: ['model', 'arm'],
      registers,
    });
    this.shadow = new Counter({
      name: 'edgefl_inference_shadow_total',
      help: 'Shadow comparisons against the serving version, by outcome (agree, disagree, error, dropped)',
      labelNames: ['model', 'outcome'],
      registers,
    });
    this.shadowLatency = new Histogram({
      name: 'edgefl_inference_shadow_duration_seconds',
      help: 'Latency of the serving and the shadow version on the same inputs',
      labelNames: ['model', 'role'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }
}
