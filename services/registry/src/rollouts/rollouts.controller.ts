import { OTA_STATE_SYMBOLS } from '@edgefl/contracts';
import { randomUUID } from 'node:crypto';
import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  AdminOnly,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  ConflictError,
  IdParam,
  NotFoundError,
  ValidBody,
  ValidQuery,
} from '@edgefl/service-kit';
import { z } from 'zod';
import type { Release } from '../storage/records.js';
import { RolloutHealthBody } from './rollout-health.js';
import { RolloutEngine } from './rollout-engine.service.js';
import { RolloutIntake } from './rollout-intake.service.js';
import { RolloutsService } from './rollouts.service.js';
import { VersionNumber } from '../http/version-param.js';

const rate = z.number().min(0).max(1);
const Stage = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z0-9_.-]+$/),
  percentage: z.number().gt(0).max(100),
});
const CreateRelease = z.strictObject({
  version: VersionNumber,
  stages: z
    .array(z.union([z.number().gt(0).max(100), Stage]))
    .min(1)
    .max(20)
    .optional(),
  gates: z
    .strictObject({
      minDevicesReporting: z.number().int().min(0),
      minSoakMs: z.number().int().min(0),
      maxOtaFailureRate: rate,
      maxInferenceErrorRate: rate,
      maxLatencyRatio: z.number().min(1),
      maxAccuracyDrop: rate,
      maxConfidenceDrop: rate,
      maxDriftScore: z.number().min(0),
      deviceTimeoutMs: z.number().int().positive(),
    })
    .partial()
    .optional(),
  targeting: z
    .strictObject({
      minRamBytes: z.number().int().positive().nullable(),
      firmwareRange: z.string().min(1).max(128).nullable(),
      hardwareClasses: z.array(z.string().min(1).max(64)).max(100),
      groups: z.array(z.string().min(1).max(64)).max(1000),
    })
    .partial()
    .optional(),
  baseline: z
    .strictObject({
      p95LatencyMs: z.number().positive().nullable(),
      accuracy: rate.nullable(),
      meanConfidence: rate.nullable(),
    })
    .partial()
    .optional(),
  start: z.boolean().optional(),
});
const Reason = z.strictObject({ reason: z.string().min(1).max(500).optional() });
const OtaStatusBody = z.strictObject({
  eventId: z.uuid().optional(),
  modelId: Id,
  releaseId: z.string().max(64).nullable().default(null),
  fromVersion: z.number().int().min(1).nullable().default(null),
  toVersion: VersionNumber,
  state: z.enum(OTA_STATE_SYMBOLS),
  viaDelta: z.boolean().default(false),
  errorCode: z.string().max(64).nullable().default(null),
  errorMessage: z.string().max(500).nullable().default(null),
  bytesDownloaded: z.number().int().min(0).default(0),
  bytesTotal: z.number().int().min(0).nullable().default(null),
});
const Live = z.enum(['true', 'false']).optional();

@ApiTags('releases')
@AdminOnly()
@Controller('v1')
export class RolloutsController {
  constructor(
    private readonly rollouts: RolloutsService,
    private readonly engine: RolloutEngine,
    private readonly intake: RolloutIntake,
  ) {}

  private async view(release: Release) {
    const [transitions, verdict] = await Promise.all([
      this.rollouts.transitionsOf(release.id),
      release.state === 'ROLLING_OUT' ? this.engine.verdict(release) : Promise.resolve(null),
    ]);
    const devices = await this.rollouts.deviceCounts(release.id);
    return {
      ...release,
      stage: release.stages[release.stageIndex],
      transitions,
      gateStatus: verdict,
      devices,
    };
  }

  @Post('models/:model/releases')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Release a version with a staged rollout (default 1% → 10% → 50% → 100%) behind health gates',
  })
  @DocIdParams('model')
  @DocBody(CreateRelease)
  async create(
    @IdParam('model') model: string,
    @ValidBody(CreateRelease) body: z.infer<typeof CreateRelease>,
  ) {
    return this.view(await this.rollouts.create(model, body));
  }

  @Get('releases')
  @ApiOperation({ summary: 'List releases (filter by model, tenant, live)' })
  @DocQuery('model', Id)
  @DocQuery('tenant', Id)
  @DocQuery('live', Live)
  list(
    @ValidQuery('model', Id.optional()) model: string | undefined,
    @ValidQuery('tenant', Id.optional()) tenant: string | undefined,
    @ValidQuery('live', Live) live: 'true' | 'false' | undefined,
  ): Promise<Release[]> {
    return this.rollouts.list({
      ...(model ? { modelId: model } : {}),
      ...(tenant ? { tenantId: tenant } : {}),
      live: live === 'true',
    });
  }

  @Get('releases/:release')
  @ApiOperation({ summary: 'A release: state, stage, transitions, live gate evaluation, device progress' })
  @DocIdParams('release')
  async get(@IdParam('release') id: string) {
    return this.view(await this.rollouts.get(id));
  }

  @Post('releases/:release/start')
  @HttpCode(200)
  @ApiOperation({ summary: 'Start a PENDING release' })
  @DocIdParams('release')
  async start(@IdParam('release') id: string) {
    return this.view(await this.rollouts.start(id));
  }

  @Post('releases/:release/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause a rollout (no stage advances; devices already in keep the new version)' })
  @DocIdParams('release')
  @DocBody(Reason)
  async pause(@IdParam('release') id: string, @ValidBody(Reason) body: z.infer<typeof Reason>) {
    return this.view(await this.rollouts.pause(id, body.reason));
  }

  @Post('releases/:release/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a paused rollout (the stage soak restarts)' })
  @DocIdParams('release')
  async resume(@IdParam('release') id: string) {
    return this.view(await this.rollouts.resume(id));
  }

  @Post('releases/:release/abort')
  @HttpCode(200)
  @ApiOperation({ summary: 'Abort and roll back: every device returns to the previous version' })
  @DocIdParams('release')
  @DocBody(Reason)
  async abort(@IdParam('release') id: string, @ValidBody(Reason) body: z.infer<typeof Reason>) {
    return this.view(await this.rollouts.abort(id, body.reason));
  }

  @Post('releases/:release/health')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Post a rollout-health window (what telemetry publishes on edgefl.rollout.health.v1)',
  })
  @DocIdParams('release')
  @DocBody(RolloutHealthBody)
  async health(
    @IdParam('release') id: string,
    @ValidBody(RolloutHealthBody) body: z.infer<typeof RolloutHealthBody>,
  ) {
    const release = await this.rollouts.get(id);
    // COMPLETED and ROLLED_BACK are final: a window for them changes nothing, so it is not accepted
    if (release.state === 'COMPLETED' || release.state === 'ROLLED_BACK')
      throw new ConflictError(`release ${id} is ${release.state}: it takes no more health windows`);
    await this.intake.recordHealth({
      ...body,
      eventId: body.eventId ?? randomUUID(),
      tenant: release.tenantId,
      releaseId: id,
      modelId: release.modelId,
      version: release.version,
    });
    return this.view(await this.rollouts.get(id));
  }

  @Post('devices/:device/ota-status')
  @HttpCode(202)
  @ApiOperation({
    summary: "Post a device's OTA status (what the gateway publishes on edgefl.ota.status.v1)",
  })
  @DocIdParams('device')
  @DocBody(OtaStatusBody)
  async otaStatus(
    @IdParam('device') device: string,
    @ValidBody(OtaStatusBody) body: z.infer<typeof OtaStatusBody>,
  ) {
    const known = await this.intake.recordOtaStatus({
      ...body,
      eventId: body.eventId ?? randomUUID(),
      tenant: '',
      deviceId: device,
      timestamp: Date.now(),
    });
    if (!known) throw new NotFoundError(`no device ${device}`);
    return { accepted: true };
  }
}
