import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ManifestError } from './errors.js';
import { sha256Hex } from './hash.js';

/**
 * Release manifests, following The Update Framework's ideas (https://theupdateframework.io/specification/):
 * a monotonic version number, an expiry, the artifact's length and hash, signatures over a canonical form by
 * keys the device already trusts. A device refuses a bad signature, an unknown key, an expired manifest (freeze
 * attack), a version lower than the one installed (rollback attack), and an artifact whose length or hash differs
 * or that grows past its declared length (endless-data attack).
 */
export const MANIFEST_TYPE = 'edgefl.release-manifest';
export const MANIFEST_SPEC_VERSION = 1;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex sha256');
const isoDate = z.iso.datetime({ offset: true });
const identifier = z.string().min(1).max(256);
/** Up to 64 rows of finite numbers (canary inputs or outputs). */
const canaryRows = z
  .array(
    z
      .array(z.number().finite())
      .min(1)
      .max(1 << 16),
  )
  .min(1)
  .max(64);

export const ReleaseManifestSchema = z
  .object({
    _type: z.literal(MANIFEST_TYPE),
    specVersion: z.literal(MANIFEST_SPEC_VERSION),
    modelId: identifier,
    /** Monotonic release number; a device never installs a lower one. */
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** Human label (e.g. "2025.06-r12"); not used for ordering. */
    label: z.string().max(128),
    created: isoDate,
    /** After this instant the manifest is refused (freeze protection); re-sign to extend. */
    expires: isoDate,
    parentVersion: z.number().int().min(1).nullable(),
    artifact: z
      .object({
        format: z.enum(['artifact', 'onnx']),
        size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        sha256,
        chunkSize: z.number().int().min(64),
        merkleRoot: sha256,
      })
      .strict(),
    provenance: z
      .object({
        roundId: z.string().max(256).nullable(),
        participants: z.number().int().min(0),
        dp: z
          .object({ epsilon: z.number().min(0).finite(), delta: z.number().min(0).max(1) })
          .strict()
          .nullable(),
        metrics: z.record(z.string(), z.number().finite()),
      })
      .strict(),
    targeting: z
      .object({
        tenants: z.array(identifier).max(10_000),
        cohorts: z.array(identifier).max(10_000),
      })
      .strict(),
    /** Device classes that may install it (e.g. "arm64-cpu"); empty = any. */
    hardwareClasses: z.array(identifier).max(256),
    /**
     * Validation inputs a device runs before installing this version, with the outputs the reference forward pass
     * gives for them: the device refuses the version when an output is not finite, has the wrong shape, or differs
     * by more than `tolerance` (absolute). Optional: manifests written before it have none.
     */
    canary: z
      .object({
        inputs: canaryRows,
        outputs: canaryRows,
        tolerance: z.number().positive().max(1),
      })
      .strict()
      .optional(),
    /** Deltas the registry offers to this version. */
    deltas: z
      .array(
        z
          .object({
            fromVersion: z.number().int().min(1),
            size: z.number().int().min(0),
            sha256,
            mode: z.enum(['lossless', 'bounded']),
          })
          .strict(),
      )
      .max(1000),
  })
  .strict();

export type ReleaseManifest = z.infer<typeof ReleaseManifestSchema>;

const SignatureSchema = z
  .object({
    keyId: z.string().min(1).max(128),
    /** Ed25519 signature, base64. */
    sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'a base64 Ed25519 signature'),
  })
  .strict();

export const SignedManifestSchema = z
  .object({ signed: z.unknown(), signatures: z.array(SignatureSchema).min(1).max(16) })
  .strict();

/** TUF's envelope: the manifest and the signatures over its canonical bytes. */
export interface SignedManifest {
  signed: ReleaseManifest;
  signatures: Array<{ keyId: string; sig: string }>;
}

/** A signer passed in by the caller (libs/keys' KeyProvider.sign, or a local Ed25519 key). */
export type ManifestSigner = (bytes: Uint8Array) => Promise<{ keyId: string; signature: Uint8Array }>;

/**
 * Canonical JSON (RFC 8785 for the values a manifest holds: objects with keys sorted by UTF-16 code units,
 * arrays, strings, finite numbers in ECMAScript form, booleans, null). These are the bytes that get signed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new ManifestError('malformed', 'canonical JSON has no non-finite numbers');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new ManifestError('malformed', `canonical JSON cannot hold a ${typeof value}`);
}

/** The bytes a signature covers. */
export function manifestSigningBytes(manifest: ReleaseManifest): Uint8Array {
  return new TextEncoder().encode(canonicalJson(manifest));
}

function parseManifest(value: unknown): ReleaseManifest {
  const parsed = ReleaseManifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ManifestError('malformed', `manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const m = parsed.data;
  if (Date.parse(m.expires) <= Date.parse(m.created))
    throw new ManifestError('malformed', 'manifest expires before it was created');
  if (m.canary && m.canary.inputs.length !== m.canary.outputs.length) {
    throw new ManifestError('malformed', 'manifest canary: one output row per input row');
  }
  if (m.parentVersion !== null && m.parentVersion >= m.version) {
    throw new ManifestError('malformed', 'manifest parent version must be lower than its version');
  }
  return m;
}

/** Validates a manifest and signs its canonical form. */
export async function signManifest(manifest: ReleaseManifest, sign: ManifestSigner): Promise<SignedManifest> {
  const signed = parseManifest(manifest);
  const { keyId, signature } = await sign(manifestSigningBytes(signed));
  if (!(signature instanceof Uint8Array) || signature.byteLength !== 64) {
    throw new ManifestError('bad-signature', 'the signer did not return a 64-byte Ed25519 signature');
  }
  return { signed, signatures: [{ keyId, sig: Buffer.from(signature).toString('base64') }] };
}

/** Adds another signature (for a threshold of signers). */
export async function addSignature(envelope: SignedManifest, sign: ManifestSigner): Promise<SignedManifest> {
  const { keyId, signature } = await sign(manifestSigningBytes(parseManifest(envelope.signed)));
  return {
    ...envelope,
    signatures: [...envelope.signatures, { keyId, sig: Buffer.from(signature).toString('base64') }],
  };
}

/** The key id of a raw Ed25519 public key: first 16 bytes of its SHA-256, hex (the same rule as libs/keys). */
export function ed25519KeyId(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 32);
}

/** Imports a raw 32-byte Ed25519 public key with node:crypto only (JWK form, RFC 8037). */
export function importRawEd25519(rawPublicKey: Uint8Array): KeyObject {
  if (!(rawPublicKey instanceof Uint8Array) || rawPublicKey.byteLength !== 32) {
    throw new ManifestError('unknown-key', 'a trusted Ed25519 public key is 32 raw bytes');
  }
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(rawPublicKey).toString('base64url') },
    format: 'jwk',
  });
}

export interface VerifyManifestOptions {
  /** Trusted signing keys: key id → raw 32-byte Ed25519 public key. */
  trustedKeys: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>;
  /** Valid signatures from distinct trusted keys required (TUF threshold). Default 1. */
  threshold?: number;
  /** Now, for the expiry check. */
  now?: Date;
  /** The version the device runs; a lower manifest version is a rollback. */
  installedVersion?: number;
  /** The model the device asked for. */
  modelId?: string;
}

/**
 * Verifies a signed manifest (an untrusted value, e.g. parsed JSON) and returns the manifest it vouches for.
 * Throws ManifestError with reason 'malformed', 'unknown-key' (no signature by a trusted key), 'bad-signature'
 * (a trusted key's signature does not verify, or fewer than `threshold` do), 'wrong-model', 'expired', 'rollback'.
 */
export function verifyManifest(envelope: unknown, options: VerifyManifestOptions): ReleaseManifest {
  const outer = SignedManifestSchema.safeParse(envelope);
  if (!outer.success) {
    const issue = outer.error.issues[0]!;
    throw new ManifestError(
      'malformed',
      `signed manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const manifest = parseManifest(outer.data.signed);
  const trusted =
    options.trustedKeys instanceof Map ? options.trustedKeys : new Map(Object.entries(options.trustedKeys));
  const threshold = options.threshold ?? 1;
  const bytes = manifestSigningBytes(manifest);
  const valid = new Set<string>();
  let sawTrusted = false;
  for (const { keyId, sig } of outer.data.signatures) {
    const raw = trusted.get(keyId);
    if (!raw) continue;
    sawTrusted = true;
    if (ed25519KeyId(raw) !== keyId)
      throw new ManifestError('unknown-key', `trusted key ${keyId} does not match its key id`);
    if (verifySignature(null, bytes, importRawEd25519(raw), Buffer.from(sig, 'base64'))) valid.add(keyId);
    else throw new ManifestError('bad-signature', `signature by key ${keyId} does not verify`);
  }
  if (!sawTrusted) throw new ManifestError('unknown-key', 'no signature by a trusted key');
  if (valid.size < threshold) {
    throw new ManifestError(
      'bad-signature',
      `${valid.size} valid signature(s) by trusted keys, ${threshold} required`,
    );
  }
  if (options.modelId !== undefined && manifest.modelId !== options.modelId) {
    throw new ManifestError(
      'wrong-model',
      `manifest is for model ${manifest.modelId}, not ${options.modelId}`,
    );
  }
  const now = options.now ?? new Date();
  if (Date.parse(manifest.expires) <= now.getTime()) {
    throw new ManifestError('expired', `manifest expired at ${manifest.expires}`);
  }
  if (options.installedVersion !== undefined && manifest.version < options.installedVersion) {
    throw new ManifestError(
      'rollback',
      `manifest version ${manifest.version} is lower than installed version ${options.installedVersion}`,
    );
  }
  return manifest;
}

/** Checks a whole artifact against a verified manifest: 'too-large', 'length-mismatch' or 'hash-mismatch'. */
export function verifyArtifact(manifest: ReleaseManifest, bytes: Uint8Array): void {
  const verifier = new ArtifactVerifier(manifest);
  verifier.update(bytes);
  verifier.finish();
}

/**
 * Checks an artifact while it downloads: refuses as soon as more bytes arrive than the manifest declares (so an
 * endless download stops early), and checks length and sha256 at the end.
 */
export class ArtifactVerifier {
  readonly #expected: ReleaseManifest['artifact'];
  readonly #hash = createHash('sha256');
  #received = 0;

  constructor(manifest: ReleaseManifest) {
    this.#expected = manifest.artifact;
  }

  get received(): number {
    return this.#received;
  }

  update(chunk: Uint8Array): void {
    this.#received += chunk.byteLength;
    if (this.#received > this.#expected.size) {
      throw new ManifestError(
        'too-large',
        `artifact is larger than the ${this.#expected.size} bytes the manifest declares`,
      );
    }
    this.#hash.update(chunk);
  }

  finish(): void {
    if (this.#received !== this.#expected.size) {
      throw new ManifestError(
        'length-mismatch',
        `artifact is ${this.#received} bytes, the manifest declares ${this.#expected.size}`,
      );
    }
    if (this.#hash.digest('hex') !== this.#expected.sha256) {
      throw new ManifestError('hash-mismatch', 'artifact sha256 does not match the manifest');
    }
  }
}

export { sha256Hex };
