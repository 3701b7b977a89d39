import { randomUUID } from 'node:crypto';
import { base64url, createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { ed25519PublicKeyToPem, importEd25519PublicKey, type KeyProvider } from '@edgefl/keys';
import type { Device } from '../storage/records.js';

/** Name of the registry's token-signing key at the KeyProvider. */
export const DEVICE_TOKEN_KEY = 'registry-device-tokens';
export const TOKEN_ISSUER = 'edgefl-registry';
/** Audience of the tokens the registry issues (the MQTT gateway checks it). */
export const TOKEN_AUDIENCE = 'edgefl-mqtt';
/** The registry accepts the same tokens for manifests and downloads when REGISTRY_DEVICE_AUTH=required. */
export const REGISTRY_AUDIENCE = 'edgefl-registry';
/** Audience a device's own assertion must name. */
export const ASSERTION_AUDIENCE = 'edgefl-registry';
/** Longest accepted lifetime of a device assertion. */
export const MAX_ASSERTION_AGE_S = 300;

export interface DeviceTokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  tenant: string;
  group: string | null;
  /** MQTT topic filters the device may use (DESIGN.md §5). */
  acl: { publish: string[]; subscribe: string[] };
  iat: number;
  exp: number;
  jti: string;
}

/**
 * The `tokensNotBefore` a revocation or key rotation at `nowMs` sets. Tokens carry whole-second `iat`s, and a token
 * issued since the previous cut-off has `iat` = max(now, previous cut-off) in seconds (DeviceTokenIssuer.issue), so
 * the new cut-off is the second after the latest `iat` any token held now can carry: every such token has
 * `iat * 1000 < tokensNotBefore` and is refused, while tokens issued afterwards carry `iat ≥ tokensNotBefore / 1000`.
 */
export function tokensNotBeforeAt(nowMs: number, previous: number | null): number {
  return (Math.max(Math.floor(nowMs / 1000), Math.ceil((previous ?? 0) / 1000)) + 1) * 1000;
}

/** Whether a token issued at `iatS` (seconds) predates the device's `tokensNotBefore` (ms) and is refused. */
export function issuedBeforeCutoff(iatS: number, tokensNotBefore: number | null): boolean {
  return tokensNotBefore !== null && iatS * 1000 < tokensNotBefore;
}

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/**
 * Issues short-lived EdDSA JWTs for devices. The private key stays in the KeyProvider (local keyring or Vault
 * transit), which jose cannot drive, so the compact JWS is assembled here (header.payload, signed by the provider)
 * with jose's base64url; verification — ours and the gateway's — is plain jose (`jwtVerify` with the JWKS).
 */
export class DeviceTokenIssuer {
  constructor(
    private readonly keys: KeyProvider,
    private readonly ttlS: number,
  ) {}

  async init(): Promise<void> {
    await this.keys.createSigningKey(DEVICE_TOKEN_KEY);
  }

  async issue(
    device: Device,
    nowMs: number,
  ): Promise<{ token: string; expiresAt: number; claims: DeviceTokenClaims }> {
    // never before the device's cut-off (a token issued in the second of a rotation must still be accepted)
    const iat = Math.max(Math.floor(nowMs / 1000), Math.ceil((device.tokensNotBefore ?? 0) / 1000));
    const claims: DeviceTokenClaims = {
      iss: TOKEN_ISSUER,
      sub: device.id,
      aud: [TOKEN_AUDIENCE, REGISTRY_AUDIENCE],
      tenant: device.tenantId,
      group: device.group,
      acl: {
        publish: [`edgefl/${device.tenantId}/${device.id}/#`],
        subscribe: [`edgefl/${device.tenantId}/${device.id}/#`, `edgefl/${device.tenantId}/broadcast/#`],
      },
      iat,
      exp: iat + this.ttlS,
      jti: randomUUID(),
    };
    for (let attempt = 0; ; attempt++) {
      const versions = await this.keys.publicKeys(DEVICE_TOKEN_KEY);
      const latest = versions[versions.length - 1]!;
      const header = { alg: 'EdDSA', typ: 'JWT', kid: latest.keyId };
      const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
      const signed = await this.keys.sign(DEVICE_TOKEN_KEY, input);
      // a rotation between reading the key id and signing: sign again with the new id
      if (signed.keyId !== latest.keyId && attempt < 2) continue;
      return {
        token: `${input}.${base64url.encode(signed.signature)}`,
        expiresAt: claims.exp * 1000,
        claims,
      };
    }
  }

  /** Every usable version of the token key as a JWKS (RFC 7517; OKP/Ed25519 per RFC 8037), for verifiers. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const versions = await this.keys.publicKeys(DEVICE_TOKEN_KEY);
    return {
      keys: versions.map((v) => ({
        kty: 'OKP',
        crv: 'Ed25519',
        x: base64url.encode(v.publicKey),
        kid: v.keyId,
        alg: 'EdDSA',
        use: 'sig',
      })),
    };
  }
}

/**
 * Checks a device's proof of possession: a JWT it signed with its registered Ed25519 key (RFC 7523-style client
 * assertion) naming itself as subject and the registry as audience, at most MAX_ASSERTION_AGE_S old and unexpired.
 * Returns the assertion's jti and expiry for replay protection.
 */
export async function verifyDeviceAssertion(
  device: Device,
  assertion: string,
  nowMs: number,
): Promise<{ jti: string; expiresAt: number }> {
  const key = importEd25519PublicKey(ed25519PublicKeyToPem(Buffer.from(device.publicKey, 'base64')));
  try {
    const { payload } = await jwtVerify(assertion, key, {
      algorithms: ['EdDSA'],
      audience: ASSERTION_AUDIENCE,
      subject: device.id,
      maxTokenAge: MAX_ASSERTION_AGE_S,
      requiredClaims: ['iat', 'exp', 'jti'],
      currentDate: new Date(nowMs),
      clockTolerance: 30,
    });
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 128) {
      throw new AssertionError('the assertion needs a jti of 1-128 characters');
    }
    if ((payload.exp ?? 0) - (payload.iat ?? 0) > MAX_ASSERTION_AGE_S) {
      throw new AssertionError(`an assertion may live at most ${MAX_ASSERTION_AGE_S} s`);
    }
    return { jti: payload.jti, expiresAt: (payload.exp ?? 0) * 1000 };
  } catch (error) {
    if (error instanceof AssertionError) throw error;
    // jose's messages name the failed check (signature, audience, expiry) and never carry key material
    throw new AssertionError(`the device assertion does not verify: ${(error as Error).message}`);
  }
}

/**
 * Verifies a device token the registry issued (for REGISTRY_DEVICE_AUTH=required). The JWKS is cached and reloaded
 * when a token names a key id it does not hold (after a rotation).
 */
export class DeviceTokenVerifier {
  private jwks: ReturnType<typeof createLocalJWKSet> | null = null;
  private kids = new Set<string>();

  constructor(private readonly issuer: DeviceTokenIssuer) {}

  async verify(token: string, nowMs: number): Promise<JWTPayload & { sub: string; tenant: string }> {
    const kid = (() => {
      try {
        const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
          kid?: unknown;
        };
        return typeof header.kid === 'string' ? header.kid : '';
      } catch {
        return '';
      }
    })();
    if (!this.jwks || !this.kids.has(kid)) {
      const set = await this.issuer.jwks();
      this.jwks = createLocalJWKSet(set);
      this.kids = new Set(set.keys.map((k) => k.kid ?? ''));
    }
    const { payload } = await jwtVerify(token, this.jwks, {
      issuer: TOKEN_ISSUER,
      audience: REGISTRY_AUDIENCE,
      algorithms: ['EdDSA'],
      currentDate: new Date(nowMs),
    });
    if (typeof payload.sub !== 'string' || typeof payload['tenant'] !== 'string')
      throw new Error('token lacks sub or tenant');
    return payload as JWTPayload & { sub: string; tenant: string };
  }
}
