import { Module } from '@nestjs/common';
import { AnalysisModule } from '../analysis.module.js';
import { TelemetryController } from './telemetry.controller.js';

@Module({ imports: [AnalysisModule], controllers: [TelemetryController] })
export class TelemetryHttpModule {}
