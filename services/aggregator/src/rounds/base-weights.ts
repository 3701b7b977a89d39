import { checkWeights, readOnnxSpec, readOnnxTensors } from '@edgefl/model';
import { ConflictError } from '@edgefl/service-kit';

/** The base model of a round as flat float32 layers in spec order (the order devices and the registry use). */
export interface BaseModel {
  layers: Float32Array[];
}

/**
 * Reads a round's base version from the registry: `GET {registry}/v1/models/{model}/versions/{v}/artifact`
 * (the ONNX file libs/model builds, whose `edgefl.spec` metadata names the tensors and their order).
 */
export async function fetchBaseModel(
  registryUrl: string | undefined,
  token: string | undefined,
  modelId: string,
  version: number,
): Promise<BaseModel> {
  if (!registryUrl)
    throw new ConflictError('AGGREGATOR_REGISTRY_URL is not set: no base weights', {
      code: 'registry-unavailable',
    });
  const url = new URL(
    `v1/models/${encodeURIComponent(modelId)}/versions/${version}/artifact`,
    registryUrl.endsWith('/') ? registryUrl : `${registryUrl}/`,
  );
  let res: Response;
  try {
    res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new ConflictError(`registry unreachable: ${(error as Error).message}`, {
      code: 'registry-unavailable',
    });
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw new ConflictError(`model ${modelId} has no version ${version}`, { code: 'unknown-base-version' });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ConflictError(`registry answered ${res.status} for the base artifact`, {
      code: 'registry-unavailable',
    });
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  try {
    const spec = readOnnxSpec(bytes);
    if (!spec) throw new Error('the artifact carries no edgefl.spec metadata');
    return { layers: checkWeights(spec, readOnnxTensors(bytes)).map((t) => t.data) };
  } catch (error) {
    throw new ConflictError(`base version ${version}: ${(error as Error).message}`, {
      code: 'unreadable-base-version',
    });
  }
}

/** Layers → one little-endian float32 buffer (the registry's application/vnd.edgefl.weights+f32, spec order). */
export function layersToF32(layers: readonly Float32Array[]): Buffer {
  const out = Buffer.alloc(layers.reduce((n, l) => n + l.length * 4, 0));
  let offset = 0;
  for (const l of layers) {
    Buffer.from(l.buffer, l.byteOffset, l.byteLength).copy(out, offset);
    offset += l.byteLength;
  }
  return out;
}

/** The inverse of layersToF32 for a known shape. */
export function f32ToLayers(bytes: Uint8Array, shape: readonly number[]): Float32Array[] {
  const copy = new Uint8Array(bytes); // aligned
  const all = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  const out: Float32Array[] = [];
  let offset = 0;
  for (const n of shape) {
    out.push(all.subarray(offset, offset + n));
    offset += n;
  }
  return out;
}
