import { z } from 'zod';
import { ModelFormatError, ModelSpecError } from './errors.js';
import type { TensorLayout } from './layout.js';
import { checkWeights, ModelSpecSchema, parseModelSpec, type ModelSpec } from './spec.js';
import { assertTensor, elementCount, float32FromBytes, float32ToBytes, type NamedTensor } from './tensor.js';

/**
 * The edgefl artifact container, version 1:
 *
 *   0  8 bytes  magic "EFLMODEL"
 *   8  u16 LE   container version (1)
 *  10  u16 LE   reserved (0)
 *  12  u32 LE   header length H
 *  16  H bytes  header, UTF-8 JSON: { spec?, tensors: [{ name, dims, dtype: "float32", offset }], metadata }
 *  …   zero padding up to the data offset (a multiple of 4096, so a header that grows a little moves no tensor)
 *      tensors, little-endian float32, each starting on a 64-byte boundary, zero padding between them
 *
 * The file ends exactly after the last tensor. Hashes live in the signed manifest, not in the container, so the
 * reconstruction a delta produces is byte-identical to the file it was built from.
 */
export const ARTIFACT_MAGIC = 'EFLMODEL';
export const ARTIFACT_VERSION = 1;
const PREFIX_BYTES = 16;
const DATA_ALIGN = 4096;
const TENSOR_ALIGN = 64;
const MAX_HEADER_BYTES = 16 << 20;

export interface ModelArtifact {
  /** Present when the tensors are the weights of a model spec. */
  spec?: ModelSpec;
  tensors: NamedTensor[];
  /** Free-form string metadata (model id, label, …); never secrets. */
  metadata: Record<string, string>;
}

const HeaderSchema = z
  .object({
    spec: ModelSpecSchema.optional(),
    tensors: z
      .array(
        z
          .object({
            name: z.string().min(1).max(256),
            dims: z.array(z.number().int().min(0)).max(8),
            dtype: z.literal('float32'),
            offset: z.number().int().min(0),
          })
          .strict(),
      )
      .max(100_000),
    metadata: z.record(z.string(), z.string()),
  })
  .strict();

type Header = z.infer<typeof HeaderSchema>;

const align = (n: number, to: number) => Math.ceil(n / to) * to;

/** Serialises an artifact; throws ModelSpecError for tensors that do not match the spec. */
export function encodeArtifact(artifact: ModelArtifact): Uint8Array {
  const spec = artifact.spec ? parseModelSpec(artifact.spec) : undefined;
  const tensors = spec ? checkWeights(spec, artifact.tensors) : artifact.tensors;
  const names = new Set<string>();
  for (const t of tensors) {
    assertTensor(t);
    if (names.has(t.name)) throw new ModelSpecError(`duplicate tensor name ${t.name}`);
    names.add(t.name);
  }
  const metadata = artifact.metadata ?? {};
  // the data offset depends on the header length, which depends on the offsets: settle it in at most two passes
  let dataStart = DATA_ALIGN;
  for (;;) {
    let at = dataStart;
    const entries = tensors.map((t) => {
      const offset = align(at, TENSOR_ALIGN);
      at = offset + t.data.length * 4;
      return { name: t.name, dims: t.dims, dtype: 'float32' as const, offset };
    });
    const header: Header = { ...(spec ? { spec } : {}), tensors: entries, metadata };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const needed = align(PREFIX_BYTES + json.byteLength, DATA_ALIGN);
    if (needed > dataStart) {
      dataStart = needed;
      continue;
    }
    const size = entries.length > 0 ? at : dataStart;
    const out = new Uint8Array(size);
    out.set(new TextEncoder().encode(ARTIFACT_MAGIC), 0);
    const view = new DataView(out.buffer);
    view.setUint16(8, ARTIFACT_VERSION, true);
    view.setUint32(12, json.byteLength, true);
    out.set(json, PREFIX_BYTES);
    tensors.forEach((t, i) => out.set(float32ToBytes(t.data), entries[i]!.offset));
    return out;
  }
}

/** True when the bytes start with the artifact magic. */
export function isArtifact(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 8 && new TextDecoder().decode(bytes.subarray(0, 8)) === ARTIFACT_MAGIC;
}

function readHeader(bytes: Uint8Array): { header: Header; layout: TensorLayout } {
  if (bytes.byteLength < 8 || !isArtifact(bytes)) {
    throw new ModelFormatError('bad-magic', 'not an edgefl model artifact (bad magic)');
  }
  if (bytes.byteLength < PREFIX_BYTES) throw new ModelFormatError('truncated', 'artifact is truncated');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(8, true);
  if (version !== ARTIFACT_VERSION) {
    throw new ModelFormatError(
      'unsupported-version',
      `artifact container version ${version} is not supported (expected ${ARTIFACT_VERSION})`,
    );
  }
  const headerLength = view.getUint32(12, true);
  if (headerLength > MAX_HEADER_BYTES)
    throw new ModelFormatError('bad-header', 'artifact header is too large');
  if (PREFIX_BYTES + headerLength > bytes.byteLength)
    throw new ModelFormatError('truncated', 'artifact is truncated inside its header');
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength),
      ),
    );
  } catch {
    throw new ModelFormatError('bad-header', 'artifact header is not UTF-8 JSON');
  }
  const parsed = HeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelFormatError(
      'bad-header',
      `artifact header: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const header = parsed.data;
  let end = PREFIX_BYTES + headerLength;
  const names = new Set<string>();
  const spans = header.tensors.map((t) => {
    const count = elementCount(t.dims);
    if (!Number.isSafeInteger(count))
      throw new ModelFormatError('bad-tensor', `tensor ${t.name}: shape too large`);
    if (t.offset < end || t.offset % 4 !== 0)
      throw new ModelFormatError('bad-tensor', `tensor ${t.name}: bad offset`);
    if (names.has(t.name)) throw new ModelFormatError('bad-tensor', `tensor ${t.name} appears twice`);
    names.add(t.name);
    end = t.offset + count * 4;
    if (end > bytes.byteLength)
      throw new ModelFormatError('truncated', `artifact is truncated inside tensor ${t.name}`);
    return { name: t.name, dims: t.dims, offset: t.offset, count };
  });
  const expectedSize = spans.length > 0 ? end : align(PREFIX_BYTES + headerLength, DATA_ALIGN);
  if (bytes.byteLength > expectedSize)
    throw new ModelFormatError('trailing-bytes', 'artifact has bytes after its last tensor');
  if (bytes.byteLength < expectedSize) throw new ModelFormatError('truncated', 'artifact is truncated');
  return { header, layout: { format: 'artifact', size: bytes.byteLength, tensors: spans } };
}

/** Parses an artifact; malformed or truncated input → ModelFormatError (never a crash). */
export function decodeArtifact(bytes: Uint8Array): ModelArtifact {
  const { header, layout } = readHeader(bytes);
  const tensors = layout.tensors.map((t) => ({
    name: t.name,
    dims: t.dims,
    data: float32FromBytes(bytes, t.offset, t.count),
  }));
  if (header.spec) {
    let spec: ModelSpec;
    try {
      spec = parseModelSpec(header.spec);
      checkWeights(spec, tensors);
    } catch (error) {
      throw new ModelFormatError(
        'bad-tensor',
        `artifact tensors do not match its spec: ${(error as Error).message}`,
      );
    }
    return { spec, tensors, metadata: header.metadata };
  }
  return { tensors, metadata: header.metadata };
}

/** Where an artifact's tensors are (for the delta codec), after validating its header. */
export function artifactLayout(bytes: Uint8Array): TensorLayout {
  return readHeader(bytes).layout;
}
