import { Module } from '@nestjs/common';
import { DriftService } from './drift/drift.service.js';
import { IntakeService } from './intake/intake.service.js';
import { TelemetryConsumers } from './intake/consumers.js';
import { TelemetryMetrics } from './metrics/telemetry-metrics.js';
import { RolloutHealthService } from './rollouts/rollout-health.service.js';
import { SliService } from './sli/sli.service.js';
import { SloService } from './slo/slo.service.js';
import { RetentionService } from './storage/retention.service.js';

/** Intake, SLIs, rollout health, drift, SLOs and retention: the telemetry's work (the HTTP module queries it). */
@Module({
  providers: [
    TelemetryMetrics,
    IntakeService,
    TelemetryConsumers,
    SliService,
    RolloutHealthService,
    DriftService,
    SloService,
    RetentionService,
  ],
  exports: [
    TelemetryMetrics,
    IntakeService,
    SliService,
    RolloutHealthService,
    DriftService,
    SloService,
    RetentionService,
  ],
})
export class AnalysisModule {}
