import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { isTopicSegment, type DeviceIdentity } from '../authz/acl.js';

/** Why a CONNECT was refused; each is counted, and maps to a CONNACK return code (MQTT 3.1.1 §3.2.2.3). */
export const CONNECT_REFUSALS = {
  missing_credentials: 4,
  malformed_token: 4,
  bad_signature: 4,
  unknown_key: 4,
  expired: 4,
  claims_mismatch: 4,
  username_mismatch: 4,
  client_id_mismatch: 2,
  bad_certificate: 4,
  revoked: 5,
  token_superseded: 5,
  key_rotated: 5,
  jwks_unavailable: 3,
  draining: 3,
  starting: 3,
} as const;
export type ConnectRefusal = keyof typeof CONNECT_REFUSALS;

export class ConnectRefusedError extends Error {
  override readonly name = 'ConnectRefusedError';
  constructor(
    readonly reason: ConnectRefusal,
    message: string,
  ) {
    super(message);
  }
}

/** Shortest time between two JWKS fetches (jose's cool-down). */
const COOLDOWN_MS = 1_000;

export interface TokenVerifierOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
  jwksCacheMs: number;
  clockToleranceS: number;
}

/**
 * Verifies the registry's device tokens (EdDSA JWTs) with jose against the registry's JWKS over HTTP: cached for
 * jwksCacheMs, fetched again at once when a token names a key id the cached set lacks (a rotation), with a short
 * cool-down so a flood of made-up key ids cannot hammer the registry. Issuer, audience, expiry and the tenant claim
 * are checked; the subject must be the MQTT username.
 */
export class DeviceTokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly options: TokenVerifierOptions) {
    this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cacheMaxAge: options.jwksCacheMs,
      cooldownDuration: COOLDOWN_MS,
      timeoutDuration: 5_000,
    });
  }

  async verify(username: string, token: string, nowMs: number): Promise<DeviceIdentity> {
    const check = () =>
      jwtVerify(token, this.jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ['EdDSA'],
        requiredClaims: ['sub', 'exp', 'iat'],
        currentDate: new Date(nowMs),
        clockTolerance: this.options.clockToleranceS,
      });
    let payload;
    try {
      ({ payload } = await check().catch(async (error: unknown) => {
        // an unknown kid while the set was fetched a moment ago (cool-down): wait it out and look once more, so a
        // device whose key just rotated is not refused because another token triggered the previous fetch
        if (!(error instanceof errors.JWKSNoMatchingKey) || !this.jwks.coolingDown) throw error;
        await new Promise((resolve) => setTimeout(resolve, COOLDOWN_MS));
        return check();
      }));
    } catch (error) {
      throw refusalOf(error);
    }
    const tenant = payload['tenant'];
    const group = payload['group'];
    if (!isTopicSegment(tenant))
      throw new ConnectRefusedError('claims_mismatch', 'the token has no valid tenant claim');
    if (!isTopicSegment(payload.sub))
      throw new ConnectRefusedError('claims_mismatch', 'the token has no valid subject');
    if (payload.sub !== username)
      throw new ConnectRefusedError(
        'username_mismatch',
        'the username is not the device the token was issued to',
      );
    return {
      tenant,
      deviceId: payload.sub,
      group: typeof group === 'string' ? group : null,
      via: 'token',
      issuedAt: payload.iat! * 1000,
      expiresAt: payload.exp! * 1000,
    };
  }
}

function refusalOf(error: unknown): ConnectRefusedError {
  // jose's messages name the failed check (signature, audience, expiry) and never carry key material or the token
  const message = (error as Error).message;
  if (error instanceof errors.JWTExpired) return new ConnectRefusedError('expired', message);
  if (error instanceof errors.JWTClaimValidationFailed)
    return new ConnectRefusedError('claims_mismatch', message);
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return new ConnectRefusedError('bad_signature', message);
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return new ConnectRefusedError('unknown_key', message);
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid)
    return new ConnectRefusedError('jwks_unavailable', message);
  if (
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSEAlgNotAllowed ||
    error instanceof errors.JOSENotSupported
  )
    return new ConnectRefusedError('malformed_token', message);
  // fetch failed, a non-200 JWKS answer (registry down or broken): the device may retry later
  return new ConnectRefusedError('jwks_unavailable', `the registry's JWKS could not be fetched: ${message}`);
}
