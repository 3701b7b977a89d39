import { Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  AdminOnly,
  BadRequestError,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  IdParam,
  openApiSchema,
  TooLargeError,
  UnprocessableError,
  UnsupportedMediaTypeError,
  ValidBody,
  ValidQuery,
  ZodBodyPipe,
  jsonBodyOf,
  ZodParamPipe,
} from '@edgefl/service-kit';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { RegistryConfig } from '../config.js';
import { DeviceAuthGuard } from '../devices/device-auth.guard.js';
import { readBody, sendBlob } from '../http/download.js';
import type { Model, ModelVersion } from '../storage/records.js';
import { REGISTRY_CONFIG } from '../tokens.js';
import { ModelsService } from './models.service.js';
import type { NewVersion } from './version-writer.service.js';
import { VersionNumber, VersionParam } from '../http/version-param.js';

const CreateModel = z.strictObject({
  id: Id,
  name: z.string().min(1).max(200),
  spec: z
    .unknown()
    .optional()
    .describe(
      'libs/model ModelSpec (family, inputs, hidden layers, outputs, head); needed to create versions from weights',
    ),
  deltaWindow: z.number().int().min(0).max(32).optional(),
});
const Metrics = z.record(z.string().max(64), z.number().finite());
const Tensor = z.strictObject({
  name: z.string().min(1).max(256),
  dims: z.array(z.number().int().min(0)).max(8),
  data: z.base64().describe('little-endian float32 values, base64'),
});
const VersionFromWeights = z.strictObject({
  version: VersionNumber.optional(),
  label: z.string().min(1).max(128).optional(),
  parentVersion: VersionNumber.optional(),
  metrics: Metrics.optional(),
  weights: z.array(Tensor).min(1).max(1024),
});
const VersionQuery = z.strictObject({
  version: VersionNumber.optional(),
  label: z.string().min(1).max(128).optional(),
  parentVersion: VersionNumber.optional(),
});
const ONNX_TYPES = ['application/octet-stream', 'application/onnx', 'application/x-onnx'];
const F32_TYPE = 'application/vnd.edgefl.weights+f32';

const versionView = (v: ModelVersion) => {
  const { blobKey: _blob, wrappedKey: _wrapped, ...rest } = v;
  return { ...rest, artifactUrl: `/v1/models/${v.modelId}/versions/${v.version}/artifact` };
};

@ApiTags('models')
@Controller('v1')
export class ModelsController {
  constructor(
    private readonly models: ModelsService,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
  ) {}

  @Post('tenants/:tenant/models')
  @AdminOnly()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a model' })
  @DocIdParams('tenant')
  @DocBody(CreateModel)
  createModel(
    @IdParam('tenant') tenant: string,
    @ValidBody(CreateModel) body: z.infer<typeof CreateModel>,
  ): Promise<Model> {
    return this.models.createModel(tenant, body);
  }

  @Get('tenants/:tenant/models')
  @AdminOnly()
  @ApiOperation({ summary: "List a tenant's models" })
  @DocIdParams('tenant')
  listModels(@IdParam('tenant') tenant: string): Promise<Model[]> {
    return this.models.listModels(tenant);
  }

  @Get('models/:model')
  @AdminOnly()
  @ApiOperation({ summary: 'Get a model' })
  @DocIdParams('model')
  getModel(@IdParam('model') model: string): Promise<Model> {
    return this.models.model(model);
  }

  @Post('models/:model/versions')
  @AdminOnly()
  @HttpCode(201)
  @ApiOperation({
    summary:
      'Create a version: upload ONNX (application/octet-stream), raw weights (application/vnd.edgefl.weights+f32, spec order), or JSON weights',
    description:
      'The same version number created twice → 409. Malformed ONNX or tensors of the wrong shape → 422; a body over the limit → 413.',
  })
  @DocIdParams('model')
  @ApiConsumes('application/octet-stream', F32_TYPE, 'application/json')
  @ApiBody({
    schema: { oneOf: [{ type: 'string', format: 'binary' }, openApiSchema(VersionFromWeights)] } as never,
  })
  @ApiQuery({ name: 'version', required: false, schema: openApiSchema(VersionNumber) as never })
  @ApiQuery({ name: 'label', required: false, schema: { type: 'string' } })
  @ApiQuery({ name: 'parentVersion', required: false, schema: openApiSchema(VersionNumber) as never })
  async createVersion(@IdParam('model') modelId: string, @Req() req: Request) {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const meta: NewVersion = { origin: 'UPLOAD', provenance: { via: 'upload' } };
    if (type === 'application/json') {
      const body = new ZodBodyPipe(VersionFromWeights).transform(jsonBodyOf(req));
      const weights = body.weights.map((t) => {
        const bytes = Buffer.from(t.data, 'base64');
        if (bytes.byteLength % 4 !== 0)
          throw new UnprocessableError(`tensor ${t.name}: data is not a whole number of float32 values`);
        return { name: t.name, dims: t.dims, data: new Float32Array(new Uint8Array(bytes).buffer) };
      });
      return versionView(
        await this.models.createFromWeights(modelId, weights, {
          ...meta,
          version: body.version,
          label: body.label,
          parentVersion: body.parentVersion,
          metrics: body.metrics,
        }),
      );
    }
    const query = new ZodParamPipe(VersionQuery, 'query').transform(req.query);
    Object.assign(meta, query);
    if (type === F32_TYPE || ONNX_TYPES.includes(type)) {
      const bytes = await readBody(
        req,
        this.config.own.maxUploadBytes,
        () => new TooLargeError(`the upload is larger than ${this.config.own.maxUploadBytes} bytes`),
      );
      if (bytes.byteLength === 0) throw new BadRequestError('the upload is empty');
      if (type === F32_TYPE) {
        const model = await this.models.model(modelId);
        return versionView(
          await this.models.createFromWeights(modelId, this.models.weightsFromF32(model, bytes), meta),
        );
      }
      return versionView(await this.models.createVersion(modelId, bytes, meta));
    }
    throw new UnsupportedMediaTypeError(
      `send ONNX as application/octet-stream, weights as ${F32_TYPE}, or JSON weights`,
    );
  }

  @Get('models/:model/versions')
  @AdminOnly()
  @ApiOperation({ summary: "List a model's versions" })
  @DocIdParams('model')
  async listVersions(@IdParam('model') model: string) {
    return (await this.models.listVersions(model)).map(versionView);
  }

  @Get('models/:model/versions/:version')
  @AdminOnly()
  @ApiOperation({ summary: 'Get a version (hash, size, signature, provenance, metrics)' })
  @DocIdParams('model')
  async getVersion(@IdParam('model') model: string, @VersionParam('version') version: number) {
    return versionView(await this.models.version(model, version));
  }

  @Post('models/:model/versions/:version/deprecate')
  @AdminOnly()
  @HttpCode(200)
  @ApiOperation({ summary: 'Deprecate a version (no new releases, deltas or baselines use it)' })
  @DocIdParams('model')
  async deprecate(@IdParam('model') model: string, @VersionParam('version') version: number) {
    return versionView(await this.models.deprecate(model, version));
  }

  @Get('models/:model/versions/:version/artifact')
  @UseGuards(DeviceAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Download the ONNX artifact (Range for resume, ETag = sha256, If-None-Match, If-Range)',
  })
  @ApiProduces('application/octet-stream')
  @DocIdParams('model')
  async artifact(
    @IdParam('model') model: string,
    @VersionParam('version') version: number,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    const v = await this.models.version(model, version);
    await sendBlob(
      req,
      res,
      {
        sha256: v.sha256,
        sizeBytes: v.sizeBytes,
        contentType: 'application/octet-stream',
        fileName: `${model}-v${version}.onnx`,
      },
      (start, end) => this.models.openArtifact(v, start, end),
    );
  }

  @Get('models/:model/versions/:to/delta')
  @UseGuards(DeviceAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary:
      'How to get from version `from` to `to`: a direct delta, a chain of deltas, or the full artifact, whichever is smallest',
  })
  @DocIdParams('model')
  @DocQuery('from', VersionNumber, true)
  deltaPlan(
    @IdParam('model') model: string,
    @VersionParam('to') to: number,
    @ValidQuery('from', VersionNumber) from: number,
  ) {
    return this.models.deltaPlan(model, to, from);
  }

  @Get('models/:model/deltas/:from/:to')
  @UseGuards(DeviceAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Download one delta (libs/model delta format; Range, ETag)' })
  @ApiProduces('application/octet-stream')
  @DocIdParams('model')
  async deltaBytes(
    @IdParam('model') model: string,
    @VersionParam('from') from: number,
    @VersionParam('to') to: number,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    const m = await this.models.model(model);
    const d = await this.models.delta(model, from, to);
    await sendBlob(
      req,
      res,
      {
        sha256: d.sha256,
        sizeBytes: d.sizeBytes,
        contentType: 'application/octet-stream',
        fileName: `${model}-${from}-${to}.delta`,
      },
      (start, end) => this.models.openDelta(d, m.tenantId, start, end),
    );
  }
}
