import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManifestError, type ManifestRejection } from './errors.js';
import { sha256Hex } from './hash.js';
import {
  ArtifactVerifier,
  addSignature,
  canonicalJson,
  ed25519KeyId,
  signManifest,
  verifyArtifact,
  verifyManifest,
  type ManifestSigner,
  type ReleaseManifest,
} from './manifest.js';
import { buildChunkTree } from './merkle.js';

function keyPair(): { signer: ManifestSigner; raw: Uint8Array; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  const keyId = ed25519KeyId(raw);
  return {
    raw,
    keyId,
    signer: async (bytes) => ({ keyId, signature: new Uint8Array(sign(null, bytes, privateKey)) }),
  };
}

const artifact = new Uint8Array(100_000).map((_, i) => (i * 13) & 255);
const tree = buildChunkTree(artifact);
const manifest: ReleaseManifest = {
  _type: 'edgefl.release-manifest',
  specVersion: 1,
  modelId: 'fraud',
  version: 7,
  label: '2025.06-r7',
  created: '2025-06-01T00:00:00Z',
  expires: '2025-07-01T00:00:00Z',
  parentVersion: 6,
  artifact: {
    format: 'artifact',
    size: artifact.byteLength,
    sha256: sha256Hex(artifact),
    chunkSize: tree.chunkSize,
    merkleRoot: tree.root,
  },
  provenance: {
    roundId: 'round-42',
    participants: 120,
    dp: { epsilon: 2.5, delta: 1e-5 },
    metrics: { auc: 0.91 },
  },
  targeting: { tenants: ['acme'], cohorts: ['canary'] },
  hardwareClasses: ['arm64-cpu'],
  deltas: [{ fromVersion: 6, size: 1234, sha256: 'a'.repeat(64), mode: 'lossless' }],
};
const now = new Date('2025-06-15T00:00:00Z');
const key = keyPair();
const trusted = { [key.keyId]: key.raw };

function rejection(fn: () => unknown): ManifestRejection {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return (error as ManifestError).reason;
  }
  throw new Error('expected a ManifestError');
}

describe('release manifest', () => {
  it('signs the canonical form and verifies with a raw Ed25519 public key', async () => {
    const envelope = await signManifest(manifest, key.signer);
    const json = JSON.parse(JSON.stringify(envelope)) as unknown; // as it travels
    expect(
      verifyManifest(json, { trustedKeys: trusted, now, installedVersion: 6, modelId: 'fraud' }),
    ).toEqual(manifest);
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
  });

  it('accepts the same version again (re-install) but refuses a lower one (rollback)', async () => {
    const envelope = await signManifest(manifest, key.signer);
    expect(verifyManifest(envelope, { trustedKeys: trusted, now, installedVersion: 7 }).version).toBe(7);
    expect(
      rejection(() => verifyManifest(envelope, { trustedKeys: trusted, now, installedVersion: 8 })),
    ).toBe('rollback');
  });

  it('refuses an expired manifest (freeze)', async () => {
    const envelope = await signManifest(manifest, key.signer);
    expect(
      rejection(() =>
        verifyManifest(envelope, { trustedKeys: trusted, now: new Date('2025-07-01T00:00:00Z') }),
      ),
    ).toBe('expired');
  });

  it('refuses an unknown key', async () => {
    const envelope = await signManifest(manifest, keyPair().signer);
    expect(rejection(() => verifyManifest(envelope, { trustedKeys: trusted, now }))).toBe('unknown-key');
  });

  it('refuses a tampered manifest or signature (bad signature)', async () => {
    const envelope = await signManifest(manifest, key.signer);
    const tampered = { ...envelope, signed: { ...envelope.signed, version: 8 } };
    expect(rejection(() => verifyManifest(tampered, { trustedKeys: trusted, now }))).toBe('bad-signature');
    const bigger = {
      ...envelope,
      signed: { ...envelope.signed, artifact: { ...envelope.signed.artifact, size: 1 } },
    };
    expect(rejection(() => verifyManifest(bigger, { trustedKeys: trusted, now }))).toBe('bad-signature');
    const sig = Buffer.from(envelope.signatures[0]!.sig, 'base64');
    sig[0]! ^= 1;
    const badSig = { ...envelope, signatures: [{ keyId: key.keyId, sig: sig.toString('base64') }] };
    expect(rejection(() => verifyManifest(badSig, { trustedKeys: trusted, now }))).toBe('bad-signature');
  });

  it('requires a threshold of distinct trusted keys when asked', async () => {
    const second = keyPair();
    const both = { ...trusted, [second.keyId]: second.raw };
    const one = await signManifest(manifest, key.signer);
    expect(rejection(() => verifyManifest(one, { trustedKeys: both, now, threshold: 2 }))).toBe(
      'bad-signature',
    );
    const two = await addSignature(one, second.signer);
    expect(verifyManifest(two, { trustedKeys: both, now, threshold: 2 }).version).toBe(7);
  });

  it.each([
    ['not an object', 'manifest'],
    ['no signatures', { signed: manifest, signatures: [] }],
    [
      'a signature that is not base64 of 64 bytes',
      { signed: manifest, signatures: [{ keyId: 'k', sig: 'abc' }] },
    ],
    [
      'a missing field',
      {
        signed: { ...manifest, expires: undefined },
        signatures: [{ keyId: 'k', sig: `${'A'.repeat(86)}==` }],
      },
    ],
    [
      'a version of 0',
      { signed: { ...manifest, version: 0 }, signatures: [{ keyId: 'k', sig: `${'A'.repeat(86)}==` }] },
    ],
    [
      'a parent not below its version',
      { signed: { ...manifest, parentVersion: 7 }, signatures: [{ keyId: 'k', sig: `${'A'.repeat(86)}==` }] },
    ],
  ])('refuses a malformed envelope: %s', (_name, value) => {
    expect(rejection(() => verifyManifest(value, { trustedKeys: trusted, now }))).toBe('malformed');
  });

  it('refuses the wrong model', async () => {
    const envelope = await signManifest(manifest, key.signer);
    expect(rejection(() => verifyManifest(envelope, { trustedKeys: trusted, now, modelId: 'digits' }))).toBe(
      'wrong-model',
    );
  });
});

describe('manifest canary inputs', () => {
  const canary = { inputs: [[0.5, -1]], outputs: [[0.25]], tolerance: 1e-4 };

  it('signs and verifies a manifest that carries canary inputs and their outputs', async () => {
    const envelope = await signManifest({ ...manifest, canary }, key.signer);
    const json = JSON.parse(JSON.stringify(envelope)) as unknown;
    expect(verifyManifest(json, { trustedKeys: trusted, now }).canary).toEqual(canary);
  });

  it('keeps the signing bytes of a manifest without canary unchanged', () => {
    expect(canonicalJson(manifest)).not.toContain('"canary":');
  });

  it('refuses canary outputs that do not pair with the inputs, and a tampered canary', async () => {
    await expect(
      signManifest({ ...manifest, canary: { ...canary, outputs: [] } }, key.signer),
    ).rejects.toMatchObject({ reason: 'malformed' });
    const envelope = await signManifest({ ...manifest, canary }, key.signer);
    const tampered = JSON.parse(JSON.stringify(envelope)) as { signed: { canary: typeof canary } };
    tampered.signed.canary.outputs = [[0.9]];
    expect(rejection(() => verifyManifest(tampered, { trustedKeys: trusted, now }))).toBe('bad-signature');
  });
});

describe('artifact verification against a manifest', () => {
  it('accepts the artifact it declares', () => {
    expect(() => verifyArtifact(manifest, artifact)).not.toThrow();
  });

  it('refuses an artifact larger than declared as soon as it grows past it', () => {
    const verifier = new ArtifactVerifier(manifest);
    verifier.update(artifact);
    expect(rejection(() => verifier.update(new Uint8Array(1)))).toBe('too-large');
  });

  it('refuses a short artifact and one with a different hash', () => {
    expect(rejection(() => verifyArtifact(manifest, artifact.subarray(1)))).toBe('length-mismatch');
    const flipped = artifact.slice();
    flipped[500]! ^= 1;
    expect(rejection(() => verifyArtifact(manifest, flipped))).toBe('hash-mismatch');
  });
});
