import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import {
  AdminToken,
  CLOCK,
  type Clock,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
} from '@edgefl/service-kit';
import type { Request } from 'express';
import type { RegistryConfig } from '../config.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { DeviceTokenVerifier, issuedBeforeCutoff } from './device-tokens.js';
import { DevicesService } from './devices.service.js';

/**
 * With REGISTRY_DEVICE_AUTH=required (the default), device-facing routes need the device token the registry issued
 * (`Authorization: Bearer <jwt>`): a device reads only its own manifest (`sub` = the `:device` parameter) and
 * downloads only its tenant's artifacts and deltas (`tenant` = the model's tenant). The token's device must still
 * be registered, not revoked, and the token not issued before the device's `tokensNotBefore` (revocation or key
 * rotation): the store is read on every request, so a revocation holds at once on every replica. The management
 * API's admin token also downloads artifacts and deltas (not a device's manifest): the platform's services fetch
 * with it — the aggregator a round's base version (`AGGREGATOR_REGISTRY_TOKEN`), the cloud inference tier what it
 * serves.
 */
@Injectable()
export class DeviceAuthGuard implements CanActivate {
  private readonly verifier: DeviceTokenVerifier;
  private readonly modelTenants = new Map<string, string>();

  constructor(
    devices: DevicesService,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly adminToken: AdminToken,
  ) {
    this.verifier = new DeviceTokenVerifier(devices.tokens);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.config.own.deviceAuth === 'off') return true;
    const req = context.switchToHttp().getRequest<Request>();
    const header = req.headers.authorization ?? '';
    // downloads (no :device in the route) are open to the management API too; a device's manifest stays its own
    if (typeof req.params['device'] !== 'string' && this.adminToken.authorizes(header)) return true;
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new UnauthorizedError('a device token is required (Authorization: Bearer <token>)');
    let claims: { sub: string; tenant: string; iat?: number };
    try {
      claims = await this.verifier.verify(match[1]!, this.clock.now());
    } catch {
      throw new UnauthorizedError('the device token does not verify (signature, issuer, audience or expiry)');
    }
    const holder = await this.store.devices.getDevice(claims.sub);
    if (
      !holder ||
      holder.tenantId !== claims.tenant ||
      holder.revokedAt !== null ||
      issuedBeforeCutoff(claims.iat ?? 0, holder.tokensNotBefore)
    ) {
      throw new UnauthorizedError('the device token was revoked (device revoked or its key rotated)');
    }
    const device = req.params['device'];
    if (typeof device === 'string' && device !== claims.sub)
      throw new ForbiddenError('a device reads only its own manifest');
    const model = req.params['model'];
    if (typeof model === 'string') {
      let tenant = this.modelTenants.get(model);
      if (tenant === undefined) {
        const found = await this.store.catalog.getModel(model);
        if (!found) throw new NotFoundError(`no model ${model}`);
        tenant = found.tenantId;
        this.modelTenants.set(model, tenant);
      }
      if (tenant !== claims.tenant) throw new ForbiddenError("a device downloads only its tenant's models");
    }
    return true;
  }
}
