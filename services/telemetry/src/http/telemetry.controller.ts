import { Controller, Delete, Get, HttpCode, Inject, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  AdminOnly,
  BadRequestError,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  IdParam,
  NotFoundError,
  ValidBody,
  ValidQuery,
} from '@edgefl/service-kit';
import { z } from 'zod';
import { checkSlo, SloFields } from '../config.js';
import { RolloutHealthService } from '../rollouts/rollout-health.service.js';
import { SliService } from '../sli/sli.service.js';
import { SloService } from '../slo/slo.service.js';
import type { TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_STORE } from '../tokens.js';

const WindowMs = z.coerce
  .number()
  .int()
  .min(60_000)
  .max(90 * 24 * 3_600_000)
  .default(3_600_000)
  .describe('sliding window length in ms (default 1 h)');
const OptionalId = Id.optional();
const OptionalVersion = z.coerce.number().int().min(0).optional();
const Group = z.string().min(1).max(64).optional();
const Sli = z.enum(['AVAILABILITY', 'LATENCY_P99', 'FRESHNESS', 'OTA_SUCCESS']);
const State = z.enum(['fresh', 'silent']).optional();
const Limit = z.coerce.number().int().min(1).max(10_000).default(1000);
const SloBody = SloFields.omit({ tenant: true }).superRefine(checkSlo);

/** The query API: per device, per cohort (series), per release, per round; SLOs and alerts. */
@ApiTags('telemetry')
@AdminOnly()
@Controller('v1')
export class TelemetryController {
  constructor(
    private readonly slis: SliService,
    private readonly health: RolloutHealthService,
    private readonly slos: SloService,
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
  ) {}

  @Get('tenants/:tenant/slis')
  @ApiOperation({
    summary: 'SLIs per series (model × version × group) over a sliding window, and their total',
  })
  @DocIdParams('tenant')
  @DocQuery('model', Id)
  @DocQuery('version', z.number().int())
  @DocQuery('group', z.string())
  @DocQuery('windowMs', WindowMs)
  series(
    @IdParam('tenant') tenant: string,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
    @ValidQuery('version', OptionalVersion) version: number | undefined,
    @ValidQuery('group', Group) group: string | undefined,
    @ValidQuery('windowMs', WindowMs) windowMs: number,
  ) {
    return this.slis.series({ tenant, modelId, version, group, windowMs });
  }

  @Get('tenants/:tenant/models/:model/cohorts')
  @ApiOperation({
    summary: 'Per cohort (version × group) of a model: SLIs, OTA outcomes and devices over a window',
  })
  @DocIdParams('tenant', 'model')
  @DocQuery('windowMs', WindowMs)
  async cohorts(
    @IdParam('tenant') tenant: string,
    @IdParam('model') modelId: string,
    @ValidQuery('windowMs', WindowMs) windowMs: number,
  ) {
    const now = this.slis.now();
    const [{ series, windowStart }, mix, ota] = await Promise.all([
      this.slis.series({ tenant, modelId, windowMs }),
      this.store.versionMix(tenant, modelId),
      this.slis.ota({ tenant, modelId, from: now - windowMs, to: now + 1 }),
    ]);
    return {
      tenant,
      modelId,
      windowStart,
      windowEnd: now,
      versionMix: mix,
      ota,
      cohorts: series.map((s) => ({
        ...s,
        devices: mix.find((m) => m.version === s.version && m.group === s.group)?.devices ?? 0,
      })),
    };
  }

  @Get('tenants/:tenant/version-mix')
  @ApiOperation({ summary: 'How many devices run each version, per model and group' })
  @DocIdParams('tenant')
  @DocQuery('model', Id)
  versionMix(
    @IdParam('tenant') tenant: string,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
  ) {
    return this.store.versionMix(tenant, modelId);
  }

  @Get('tenants/:tenant/devices')
  @ApiOperation({ summary: 'Devices and their freshness (who went silent)' })
  @DocIdParams('tenant')
  @DocQuery('model', Id)
  @DocQuery('group', z.string())
  @DocQuery('state', z.enum(['fresh', 'silent']))
  @DocQuery('limit', Limit)
  devices(
    @IdParam('tenant') tenant: string,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
    @ValidQuery('group', Group) group: string | undefined,
    @ValidQuery('state', State) state: 'fresh' | 'silent' | undefined,
    @ValidQuery('limit', Limit) limit: number,
  ) {
    return this.slis.devices({ tenant, modelId, group, state, limit });
  }

  @Get('devices/:device')
  @ApiOperation({ summary: 'One device: what it runs, when it was last heard from, its OTAs' })
  @DocIdParams('device')
  async device(@IdParam('device') deviceId: string) {
    const device = (await this.store.getDevices([deviceId])).get(deviceId);
    if (!device) throw new NotFoundError(`no device ${deviceId}`);
    const ota = await this.store.queryOta({
      tenant: device.tenant,
      deviceId,
      from: 0,
      to: Number.MAX_SAFE_INTEGER,
    });
    return { ...this.slis.view(device), ota };
  }

  @Get('tenants/:tenant/ota')
  @ApiOperation({
    summary: 'OTA success rate, time to ACTIVE and bytes per OTA (delta vs full) over a window',
  })
  @DocIdParams('tenant')
  @DocQuery('model', Id)
  @DocQuery('windowMs', WindowMs)
  ota(
    @IdParam('tenant') tenant: string,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
    @ValidQuery('windowMs', WindowMs) windowMs: number,
  ) {
    const now = this.slis.now();
    return this.slis.ota({ tenant, modelId, from: now - windowMs, to: now + 1 });
  }

  @Get('tenants/:tenant/privacy')
  @ApiOperation({ summary: 'Differential-privacy ε and δ spent per model (summed over its rounds)' })
  @DocIdParams('tenant')
  async privacy(@IdParam('tenant') tenant: string) {
    return (await this.store.privacySpent()).filter((p) => p.tenant === tenant);
  }

  @Get('releases')
  @ApiOperation({ summary: 'Releases as the registry announced them' })
  @DocQuery('tenant', Id)
  releases(@ValidQuery('tenant', OptionalId) tenant: string | undefined) {
    return this.store.listReleases({ tenant });
  }

  @Get('releases/:release')
  @ApiOperation({ summary: "A release's rollout health now: canary vs baseline cohort over the same window" })
  @DocIdParams('release')
  async release(@IdParam('release') id: string) {
    const release = await this.store.getRelease(id);
    if (!release) throw new NotFoundError(`no release ${id}`);
    return (await this.health.compute(release)) ?? { release, reason: 'its version is not known yet' };
  }

  @Get('tenants/:tenant/rounds')
  @ApiOperation({ summary: 'Round results of the aggregator (participants, ε and δ spent, metrics)' })
  @DocIdParams('tenant')
  @DocQuery('model', Id)
  rounds(@IdParam('tenant') tenant: string, @ValidQuery('model', OptionalId) modelId: string | undefined) {
    return this.store.listRounds({ tenant, modelId });
  }

  @Get('rounds/:round')
  @ApiOperation({ summary: 'One round result' })
  @DocIdParams('round')
  async round(@IdParam('round') id: string) {
    const round = await this.store.getRound(id);
    if (!round) throw new NotFoundError(`no round ${id}`);
    return round;
  }

  @Get('tenants/:tenant/slos')
  @ApiOperation({ summary: 'Objectives and their last burn-rate evaluation (which alerts fire)' })
  @DocIdParams('tenant')
  slosOf(@IdParam('tenant') tenant: string) {
    return this.slos.list(tenant);
  }

  @Put('tenants/:tenant/slos')
  @ApiOperation({ summary: 'Set an objective (by tenant, model and SLI)' })
  @DocIdParams('tenant')
  @DocBody(SloBody)
  putSlo(@IdParam('tenant') tenant: string, @ValidBody(SloBody) body: z.infer<typeof SloBody>) {
    return this.slos.put({ ...body, tenant });
  }

  @Delete('tenants/:tenant/slos/:sli')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove an objective (model: the model it is about; none for FRESHNESS)' })
  @DocIdParams('tenant', 'sli')
  @DocQuery('model', Id)
  async deleteSlo(
    @IdParam('tenant') tenant: string,
    @IdParam('sli') sli: string,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
  ): Promise<void> {
    const kind = Sli.safeParse(sli);
    if (!kind.success) throw new BadRequestError(`sli must be one of ${Sli.options.join(', ')}`);
    await this.slos.remove(tenant, kind.data, modelId ?? null);
  }

  @Get('tenants/:tenant/alerts')
  @ApiOperation({ summary: 'Drift and SLO alerts raised, newest first' })
  @DocIdParams('tenant')
  @DocQuery('kind', z.enum(['drift', 'slo']))
  @DocQuery('model', Id)
  @DocQuery('limit', Limit)
  alerts(
    @IdParam('tenant') tenant: string,
    @ValidQuery('kind', z.enum(['drift', 'slo']).optional()) kind: 'drift' | 'slo' | undefined,
    @ValidQuery('model', OptionalId) modelId: string | undefined,
    @ValidQuery('limit', Limit) limit: number,
  ) {
    return this.store.listAlerts({ tenant, kind, modelId, limit });
  }
}
