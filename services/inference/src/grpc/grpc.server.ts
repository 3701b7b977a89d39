import { fileURLToPath } from 'node:url';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { TenantAuth } from '../auth/tenant-auth.js';
import type { InferenceConfig } from '../config.js';
import { modelMetadata, parseVersion, SERVER_NAME, SERVER_VERSION } from '../oip/oip.controller.js';
import { DATATYPE, INPUT_NAME, OIP_DATATYPES, OUTPUT_NAME } from '../oip/tensors.js';
import { InferError, reasonOf, type InferErrorCode } from '../serving/errors.js';
import { InferenceService, MAX_ROWS_PER_REQUEST } from '../serving/inference.service.js';
import { INFERENCE_CONFIG } from '../tokens.js';

/** The protocol's published service definition (services/inference/proto). */
export const PROTO_PATH = fileURLToPath(new URL('../../proto/grpc_predict_v2.proto', import.meta.url));
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const STATUS: Record<InferErrorCode, grpc.status> = {
  'bad-input': grpc.status.INVALID_ARGUMENT,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'not-found': grpc.status.NOT_FOUND,
  'too-large': grpc.status.RESOURCE_EXHAUSTED,
  overloaded: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

/** A request whose protobuf did not decode: answered INVALID_ARGUMENT (grpc-js itself would say INTERNAL). */
const MALFORMED = Symbol('malformed');
type Decoded<T> = T | { [MALFORMED]: string };

interface Contents {
  fp32_contents?: number[];
  [kind: string]: unknown[] | undefined;
}
interface InputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Record<string, unknown>;
  contents: Contents | null;
}
interface InferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, { string_param?: string }>;
  inputs: InputTensor[];
  outputs: Array<{ name: string }>;
  raw_input_contents: Buffer[];
}

const bad = (message: string) => new InferError('bad-input', message);

/** The FP32 values of one input tensor, from `raw_input_contents` (little-endian) or `contents.fp32_contents`. */
function tensorValues(request: InferRequest, index: number, expected: number): Float32Array {
  const tensor = request.inputs[index]!;
  if (request.raw_input_contents.length > 0) {
    if (request.raw_input_contents.length !== request.inputs.length)
      throw bad('raw_input_contents must hold one entry per input');
    const raw = request.raw_input_contents[index]!;
    if (raw.byteLength !== expected * 4)
      throw bad(
        `input '${tensor.name}': ${raw.byteLength} raw bytes, the shape needs ${expected * 4} (FP32)`,
      );
    const copy = new Uint8Array(raw.byteLength);
    copy.set(raw);
    return new Float32Array(copy.buffer);
  }
  const values = tensor.contents?.fp32_contents ?? [];
  const other = Object.entries(tensor.contents ?? {}).find(
    ([kind, list]) => kind !== 'fp32_contents' && Array.isArray(list) && list.length > 0,
  );
  if (other) throw bad(`input '${tensor.name}': FP32 data goes in fp32_contents, not ${other[0]}`);
  if (values.length !== expected)
    throw bad(
      `input '${tensor.name}': ${values.length} elements, the shape [${tensor.shape.join(',')}] needs ${expected}`,
    );
  return Float32Array.from(values);
}

/**
 * `inference.GRPCInferenceService` (the Open Inference Protocol over gRPC, @grpc/grpc-js + @grpc/proto-loader) on
 * INFERENCE_GRPC_PORT: the same inference path as HTTP (tenant token in the `authorization` metadata). Errors are
 * gRPC statuses: INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND, RESOURCE_EXHAUSTED (queue full; messages over the
 * 4 MiB limit), UNAVAILABLE, INTERNAL.
 */
@Injectable()
export class GrpcServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  #server: grpc.Server | null = null;
  /** The bound port (0 when gRPC is off). */
  port = 0;

  constructor(
    @Inject(INFERENCE_CONFIG) private readonly config: InferenceConfig,
    private readonly inference: InferenceService,
    private readonly auth: TenantAuth,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.own.grpcPort === 0) return;
    const definition = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
    const service = (definition['inference.GRPCInferenceService'] ?? {}) as grpc.ServiceDefinition;
    const guarded: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, method] of Object.entries(service)) {
      guarded[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return { [MALFORMED]: (error as Error).message };
          }
        },
      };
    }
    const server = new grpc.Server();
    server.addService(guarded as grpc.ServiceDefinition, {
      ServerLive: this.#unary(() => ({ live: true })),
      ServerReady: this.#unary(() => ({ ready: this.inference.repository.ready })),
      ServerMetadata: this.#unary(() => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] })),
      ModelReady: this.#unary((req: { name: string; version: string }, md) => {
        const tenant = this.auth.tenantOf(md);
        try {
          this.inference.repository.resolve(tenant, req.name, parseVersion(req.version || undefined));
          return { ready: true };
        } catch (error) {
          if (error instanceof InferError && error.code === 'unavailable') return { ready: false };
          throw error;
        }
      }),
      ModelMetadata: this.#unary((req: { name: string; version: string }, md) => {
        const tenant = this.auth.tenantOf(md);
        const served = this.inference.repository.resolve(
          tenant,
          req.name,
          parseVersion(req.version || undefined),
        );
        return modelMetadata(req.name, this.inference.repository.versionsOf(tenant, req.name), served);
      }),
      ModelInfer: this.#unary((req: InferRequest, md) => this.#infer(req, md)),
    });
    const host = this.config.http.host;
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${this.config.own.grpcPort}`,
        grpc.ServerCredentials.createInsecure(),
        (error, port) => (error ? reject(error) : resolve(port)),
      ),
    );
    this.#server = server;
    this.logger.info({ port: this.port }, 'gRPC inference.GRPCInferenceService listening');
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  /** A unary handler: decoded request and the caller's authorization → response, errors as gRPC statuses. */
  #unary<Req, Res>(handle: (request: Req, authorization: string | undefined) => Res | Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Decoded<Req>, Res>, callback: grpc.sendUnaryData<Res>) => {
      const request = call.request;
      if (typeof request === 'object' && request !== null && MALFORMED in request) {
        this.inference.metrics.errors.inc({ protocol: 'grpc', reason: 'bad-input' });
        callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: `malformed protobuf: ${request[MALFORMED]}`,
        });
        return;
      }
      const value = call.metadata.get('authorization')[0];
      const authorization = typeof value === 'string' ? value : value?.toString('utf8');
      Promise.resolve()
        .then(() => handle(request as Req, authorization))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            const code = reasonOf(error);
            callback({
              code: STATUS[code],
              details: code === 'internal' ? 'internal error' : (error as Error).message,
            });
          },
        );
    };
  }

  async #infer(req: InferRequest, authorization: string | undefined) {
    const tenant = this.auth.tenantOf(authorization);
    const version = parseVersion(req.model_version || undefined);
    const io = this.inference.io(tenant, req.model_name, version);
    if (req.inputs.length !== 1)
      throw bad(`the model takes one input ('${INPUT_NAME}'), the request has ${req.inputs.length}`);
    const tensor = req.inputs[0]!;
    if (tensor.name !== INPUT_NAME)
      throw bad(`unexpected input '${tensor.name}'; the model's input is '${INPUT_NAME}'`);
    if (!(OIP_DATATYPES as readonly string[]).includes(tensor.datatype))
      throw bad(`input '${tensor.name}': unknown datatype ${JSON.stringify(tensor.datatype)}`);
    if (tensor.datatype !== DATATYPE)
      throw bad(
        `input '${tensor.name}': unexpected datatype ${tensor.datatype}, the model expects ${DATATYPE}`,
      );
    const shape = tensor.shape;
    if (shape.length !== 2 || shape[1] !== io.inputs)
      throw bad(
        `input '${tensor.name}': unexpected shape [${shape.join(',')}], the model expects [-1,${io.inputs}]`,
      );
    const rows = shape[0]!;
    if (!Number.isSafeInteger(rows) || rows < 1 || rows > MAX_ROWS_PER_REQUEST)
      throw bad(`input '${tensor.name}': the batch dimension must be 1..${MAX_ROWS_PER_REQUEST}`);
    for (const o of req.outputs)
      if (o.name !== OUTPUT_NAME)
        throw bad(`unknown output '${o.name}'; the model's output is '${OUTPUT_NAME}'`);
    const input = tensorValues(req, 0, rows * io.inputs);
    const deviceId = req.parameters['device_id']?.string_param || null;
    const result = await this.inference.infer({
      tenant,
      modelId: req.model_name,
      ...(version !== undefined ? { version } : {}),
      rows,
      input,
      protocol: 'grpc',
      deviceId,
    });
    const raw = req.raw_input_contents.length > 0;
    return {
      model_name: result.modelId,
      model_version: String(result.version),
      id: req.id,
      parameters: {
        cache_hit: { bool_param: result.cacheHit },
        ...(result.arm ? { arm: { string_param: result.arm } } : {}),
      },
      outputs: [
        {
          name: OUTPUT_NAME,
          datatype: DATATYPE,
          shape: [result.rows, result.outputs],
          ...(raw ? {} : { contents: { fp32_contents: Array.from(result.output) } }),
        },
      ],
      raw_output_contents: raw
        ? [Buffer.from(result.output.buffer, result.output.byteOffset, result.output.byteLength)]
        : [],
    };
  }
}
