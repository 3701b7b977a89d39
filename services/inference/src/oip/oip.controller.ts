import { Controller, Get, HttpCode, Param, Post, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { JsonBody } from '@edgefl/service-kit';
import { Tenant, TenantGuard } from '../auth/tenant-auth.js';
import { InferError } from '../serving/errors.js';
import { InferenceService, type InferResult } from '../serving/inference.service.js';
import type { ServedVersion } from '../serving/model-repository.js';
import { OipErrorFilter } from './oip-errors.js';
import { DATATYPE, INPUT_NAME, OUTPUT_NAME, parseInferRequest } from './tensors.js';

export const SERVER_NAME = 'edgefl-inference';
export const SERVER_VERSION = '0.1.0';

/** A version path segment: the protocol's version is a string; ours are positive integers. */
export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new InferError('not-found', `no version '${raw.slice(0, 40)}': versions are positive integers`);
  return Number(raw);
}

export function modelMetadata(name: string, versions: ServedVersion[], served: ServedVersion) {
  return {
    name,
    versions: versions.map((v) => String(v.version)),
    platform: 'onnxruntime_onnx',
    inputs: [{ name: INPUT_NAME, datatype: DATATYPE, shape: [-1, served.spec.inputs] }],
    outputs: [{ name: OUTPUT_NAME, datatype: DATATYPE, shape: [-1, served.spec.outputs] }],
  };
}

export function inferResponse(result: InferResult, id: string | undefined) {
  return {
    model_name: result.modelId,
    model_version: String(result.version),
    ...(id !== undefined ? { id } : {}),
    parameters: { cache_hit: result.cacheHit, ...(result.arm ? { arm: result.arm } : {}) },
    outputs: [
      {
        name: OUTPUT_NAME,
        datatype: DATATYPE,
        shape: [result.rows, result.outputs],
        data: Array.from(result.output),
      },
    ],
  };
}

/**
 * The Open Inference Protocol v2 over HTTP/REST (KServe / Triton): health, server and model metadata, model
 * readiness, inference. Health and server metadata are open; model routes need a tenant token and reach only that
 * tenant's models.
 */
@ApiTags('open inference protocol')
@Controller('v2')
@UseFilters(OipErrorFilter)
export class OipController {
  constructor(private readonly inference: InferenceService) {}

  @Get()
  @ApiOperation({ summary: 'Server metadata' })
  server() {
    return { name: SERVER_NAME, version: SERVER_VERSION, extensions: [] };
  }

  @Get('health/live')
  @ApiOperation({ summary: 'Server liveness (200 = live)' })
  live() {
    return { live: true };
  }

  @Get('health/ready')
  @ApiOperation({ summary: 'Server readiness (200 = ready, 400 = not ready)' })
  ready(@Res() res: Response) {
    const ready = this.inference.repository.ready;
    res.status(ready ? 200 : 400).json({ ready });
  }

  @Get('models/:name')
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Model metadata (the serving version)' })
  metadata(@Param('name') name: string, @Tenant() tenant: string) {
    return this.#metadata(name, undefined, tenant);
  }

  @Get('models/:name/versions/:version')
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Model metadata of one loaded version' })
  versionMetadata(@Param('name') name: string, @Param('version') version: string, @Tenant() tenant: string) {
    return this.#metadata(name, version, tenant);
  }

  #metadata(name: string, version: string | undefined, tenant: string) {
    const served = this.inference.repository.resolve(tenant, name, parseVersion(version));
    return modelMetadata(name, this.inference.repository.versionsOf(tenant, name), served);
  }

  @Get('models/:name/ready')
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Model readiness (200 = ready, 400 = known but not ready)' })
  modelReady(@Param('name') name: string, @Res() res: Response, @Tenant() tenant: string) {
    this.#ready(name, undefined, tenant, res);
  }

  @Get('models/:name/versions/:version/ready')
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Readiness of one version' })
  versionReady(
    @Param('name') name: string,
    @Param('version') version: string,
    @Res() res: Response,
    @Tenant() tenant: string,
  ) {
    this.#ready(name, version, tenant, res);
  }

  #ready(name: string, version: string | undefined, tenant: string, res: Response): void {
    const v = parseVersion(version);
    try {
      this.inference.repository.resolve(tenant, name, v);
      res.status(200).json({ name, ready: true });
    } catch (error) {
      // a model the tenant has, with no version ready yet (or not this version): known, not ready
      if (error instanceof InferError && error.code === 'unavailable') {
        res.status(400).json({ name, ready: false });
        return;
      }
      throw error;
    }
  }

  @Post('models/:name/infer')
  @HttpCode(200)
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Inference on the serving version (or the A/B arm the request falls in)' })
  infer(@Param('name') name: string, @JsonBody() body: unknown, @Tenant() tenant: string) {
    return this.#infer(name, undefined, body, tenant);
  }

  @Post('models/:name/versions/:version/infer')
  @HttpCode(200)
  @UseGuards(TenantGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Inference on one loaded version' })
  inferVersion(
    @Param('name') name: string,
    @Param('version') version: string,
    @JsonBody() body: unknown,
    @Tenant() tenant: string,
  ) {
    return this.#infer(name, version, body, tenant);
  }

  async #infer(name: string, version: string | undefined, body: unknown, tenant: string) {
    const v = parseVersion(version);
    const io = this.inference.io(tenant, name, v);
    const request = parseInferRequest(body, io);
    const result = await this.inference.infer({
      tenant,
      modelId: name,
      ...(v !== undefined ? { version: v } : {}),
      rows: request.rows,
      input: request.input,
      protocol: 'http',
      deviceId: request.deviceId,
    });
    return inferResponse(result, request.id);
  }
}
