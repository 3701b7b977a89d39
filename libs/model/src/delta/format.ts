// The delta's wire format and the files it applies to: the prefix and header (validated with zod on read), the
// framing of the compressed body, and how tensors are found in an artifact, ONNX or .f32 file.
//
// Wire format: "EFLDELTA" | u16 LE version (1) | u16 reserved | u32 LE header length | header JSON | compressed body.
import { z } from 'zod';
import { artifactLayout, isArtifact } from '../artifact.js';
import { compress } from '../compress.js';
import { DeltaError } from '../errors.js';
import {
  assertLayout,
  f32Layout,
  TENSOR_FILE_FORMATS,
  type TensorFileFormat,
  type TensorLayout,
} from '../layout.js';
import { onnxLayout } from '../onnx/read.js';

export const DELTA_MAGIC = 'EFLDELTA';
export const DELTA_VERSION = 1;
const PREFIX_BYTES = 16;
const MAX_HEADER_BYTES = 64 << 20;
/** Largest target the codec builds or rebuilds (2 GiB). */
export const MAX_TARGET_BYTES = 2 ** 31 - 1;

export type DeltaMode = 'lossless' | 'bounded' | 'full';
export type TensorEncoding = 'same' | 'sparse' | 'dense' | 'quant' | 'raw';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
const size = z.number().int().min(0).max(MAX_TARGET_BYTES);
const TensorEntrySchema = z
  .object({
    name: z.string().min(1).max(256),
    dims: z.array(z.number().int().min(0)).max(8),
    offset: size,
    enc: z.enum(['same', 'sparse', 'dense', 'quant', 'raw']),
    /** Bytes of this tensor's section in the body. */
    length: size,
    nnz: size.optional(),
    step: z.number().positive().finite().optional(),
    width: z.union([z.literal(1), z.literal(2), z.literal(4)]).optional(),
    transform: z.enum(['xor', 'sub']).optional(),
  })
  .strict();
const HeaderSchema = z
  .object({
    format: z.enum(TENSOR_FILE_FORMATS),
    mode: z.enum(['lossless', 'bounded', 'full']),
    compression: z.enum(['zstd', 'brotli']),
    source: z.object({ size, sha256: sha }).strict(),
    target: z.object({ size, sha256: sha }).strict(),
    maxRelError: z.number().positive().finite().nullable(),
    relError: z.number().min(0).finite(),
    skeleton: z.object({ same: z.boolean(), length: size }).strict(),
    tensors: z.array(TensorEntrySchema).max(100_000),
  })
  .strict();

export type DeltaHeader = z.infer<typeof HeaderSchema>;
export type TensorEntry = z.infer<typeof TensorEntrySchema>;

/** The tensor layout of a file in the given format; malformed files → ModelFormatError. */
export function layoutOf(bytes: Uint8Array, format: TensorFileFormat | 'auto' = 'auto'): TensorLayout {
  const resolved = format === 'auto' ? (isArtifact(bytes) ? 'artifact' : 'onnx') : format;
  const layout =
    resolved === 'artifact'
      ? artifactLayout(bytes)
      : resolved === 'onnx'
        ? onnxLayout(bytes)
        : f32Layout(bytes);
  assertLayout(layout);
  return layout;
}

/** Which file format 'auto' picks for these bytes. */
export function detectFormat(bytes: Uint8Array): TensorFileFormat {
  return isArtifact(bytes) ? 'artifact' : 'onnx';
}

/** Compresses the body and writes prefix + header + body. */
export function frame(header: DeltaHeader, body: Uint8Array, level: number | undefined): Uint8Array {
  const packed = compress(body, header.compression, level ?? (body.byteLength <= 1 << 20 ? 19 : 6));
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(PREFIX_BYTES + json.byteLength + packed.byteLength);
  out.set(new TextEncoder().encode(DELTA_MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint16(8, DELTA_VERSION, true);
  view.setUint32(12, json.byteLength, true);
  out.set(json, PREFIX_BYTES);
  out.set(packed, PREFIX_BYTES + json.byteLength);
  return out;
}

/** Reads and validates a delta's header (what it applies to, what it rebuilds); malformed → DeltaError. */
export function readDeltaHeader(delta: Uint8Array): DeltaHeader & { bodyOffset: number } {
  if (delta.byteLength < 8 || new TextDecoder().decode(delta.subarray(0, 8)) !== DELTA_MAGIC) {
    throw new DeltaError('bad-magic', 'not an edgefl delta (bad magic)');
  }
  if (delta.byteLength < PREFIX_BYTES) throw new DeltaError('truncated', 'delta is truncated');
  const view = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  const version = view.getUint16(8, true);
  if (version !== DELTA_VERSION) {
    throw new DeltaError(
      'unsupported-version',
      `delta version ${version} is not supported (expected ${DELTA_VERSION})`,
    );
  }
  const headerLength = view.getUint32(12, true);
  if (headerLength > MAX_HEADER_BYTES || PREFIX_BYTES + headerLength > delta.byteLength) {
    throw new DeltaError('truncated', 'delta is truncated inside its header');
  }
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        delta.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength),
      ),
    );
  } catch {
    throw new DeltaError('bad-header', 'delta header is not UTF-8 JSON');
  }
  const parsed = HeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DeltaError('bad-header', `delta header: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return { ...parsed.data, bodyOffset: PREFIX_BYTES + headerLength };
}

/** A damaged delta. */
export function corrupt(message: string): DeltaError {
  return new DeltaError('corrupt', message);
}
