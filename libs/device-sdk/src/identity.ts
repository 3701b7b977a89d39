import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { base64url } from 'jose';
import { Ed25519SigningKey, isKeyError } from '@edgefl/keys';
import { DeviceError } from './errors.js';
import { writeDurable } from './ota/fs-atomic.js';

/**
 * A device's identity: an Ed25519 key kept in a PKCS#8 PEM file (mode 0600, created on first use). It signs the
 * device's assertions (registry token exchange) and its model updates.
 */
export class DeviceIdentity {
  readonly deviceId: string;
  readonly key: Ed25519SigningKey;
  /** True when this call created the key file (a new identity to register). */
  readonly created: boolean;

  private constructor(deviceId: string, key: Ed25519SigningKey, created: boolean) {
    this.deviceId = deviceId;
    this.key = key;
    this.created = created;
  }

  /** Loads the key file, or creates it (0600, parent 0700) when it does not exist. */
  static loadOrCreate(deviceId: string, keyFile: string): DeviceIdentity {
    if (existsSync(keyFile)) {
      const mode = statSync(keyFile).mode & 0o077;
      if (mode !== 0)
        throw new DeviceError(
          'identity',
          `key file ${keyFile} is readable by others (mode ${(statSync(keyFile).mode & 0o777).toString(8)}); chmod 600 it`,
        );
      try {
        return new DeviceIdentity(deviceId, Ed25519SigningKey.fromPem(readFileSync(keyFile, 'utf8')), false);
      } catch (error) {
        if (isKeyError(error)) throw new DeviceError('identity', `key file ${keyFile}: ${error.message}`);
        throw error;
      }
    }
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    const key = Ed25519SigningKey.generate();
    const temp = `${keyFile}.tmp`;
    writeDurable(temp, Buffer.from(key.exportPem()));
    renameSync(temp, keyFile);
    chmodSync(keyFile, 0o600);
    return new DeviceIdentity(deviceId, key, true);
  }

  static fromKey(deviceId: string, key: Ed25519SigningKey): DeviceIdentity {
    return new DeviceIdentity(deviceId, key, false);
  }

  get publicKeyBase64(): string {
    return Buffer.from(this.key.publicKey).toString('base64');
  }

  get keyId(): string {
    return this.key.keyId;
  }

  /**
   * A client assertion (RFC 7523 style): a JWT the device signs with its key (EdDSA), sub = the device id, aud =
   * the registry, 60 s lifetime, fresh jti. The registry exchanges it once for a device token.
   */
  assertion(nowMs: number, audience = 'edgefl-registry'): string {
    const iat = Math.floor(nowMs / 1000);
    const header = base64url.encode(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' }));
    const claims = base64url.encode(
      JSON.stringify({ sub: this.deviceId, aud: audience, iat, exp: iat + 60, jti: randomUUID() }),
    );
    const input = `${header}.${claims}`;
    return `${input}.${base64url.encode(this.key.sign(input))}`;
  }
}
