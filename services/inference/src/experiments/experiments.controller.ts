import { Controller, Delete, Get, HttpCode, Put, UseFilters } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly, DocBody, DocIdParams, Id, IdParam, ValidBody, ValidQuery } from '@edgefl/service-kit';
import { z } from 'zod';
import { OipErrorFilter } from '../oip/oip-errors.js';
import { InferenceService } from '../serving/inference.service.js';

const Version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const ExperimentBody = z
  .strictObject({
    ab: z
      .strictObject({
        arms: z
          .array(
            z.strictObject({
              name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
              version: Version,
              weight: z.number().positive().finite(),
            }),
          )
          .min(2)
          .max(16),
      })
      .nullable()
      .default(null),
    shadow: z
      .strictObject({
        version: Version,
        releaseId: z.string().min(1).max(256).nullable().default(null),
        sampleRate: z.number().gt(0).max(1).default(1),
      })
      .nullable()
      .default(null),
  })
  .describe('An A/B split over loaded versions and/or a shadow candidate; both null clears the experiment');

/**
 * The management API of experiments (admin token): A/B splits and shadow traffic per model, set and read without an
 * app update. `tenant` names the model's tenant (a wrong one answers 404 like an unknown model).
 */
@ApiTags('experiments')
@Controller('v1/models/:model/experiment')
@UseFilters(OipErrorFilter)
@AdminOnly()
export class ExperimentsController {
  constructor(private readonly inference: InferenceService) {}

  @Get()
  @ApiOperation({ summary: "A model's experiment and its shadow statistics of the current window" })
  @DocIdParams('model')
  get(@IdParam('model') model: string, @ValidQuery('tenant', Id) tenant: string) {
    return this.inference.experiments.get(tenant, model);
  }

  @Put()
  @HttpCode(200)
  @ApiOperation({ summary: 'Set an A/B split and/or a shadow version (every version named must be loaded)' })
  @DocIdParams('model')
  @DocBody(ExperimentBody)
  set(
    @IdParam('model') model: string,
    @ValidQuery('tenant', Id) tenant: string,
    @ValidBody(ExperimentBody) body: z.infer<typeof ExperimentBody>,
  ) {
    this.inference.experiments.set(tenant, model, body);
    return this.inference.experiments.get(tenant, model);
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Clear the experiment (the serving version takes all traffic)' })
  @DocIdParams('model')
  clear(@IdParam('model') model: string, @ValidQuery('tenant', Id) tenant: string): void {
    this.inference.experiments.set(tenant, model, { ab: null, shadow: null });
  }
}
