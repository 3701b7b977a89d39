import { Inject, Injectable } from '@nestjs/common';
import {
  CLOCK,
  type Clock,
  ConflictError,
  KEY_PROVIDER,
  NotFoundError,
  UnprocessableError,
} from '@edgefl/service-kit';
import type { KeyProvider } from '@edgefl/keys';
import { tenantKekName } from '../artifacts/blob-store.js';
import { StoreConflictError } from '@edgefl/service-kit';
import type { Tenant } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_STORE } from '../tokens.js';

@Injectable()
export class TenantsService {
  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async create(input: { id: string; name: string }): Promise<Tenant> {
    // the tenant's key-encryption key exists before any artifact of the tenant is written
    await this.keys.createKeyEncryptionKey(tenantKekName(input.id));
    try {
      return await this.store.catalog.createTenant({ ...input, createdAt: this.clock.now() });
    } catch (error) {
      if (error instanceof StoreConflictError) throw new ConflictError(`tenant ${input.id} already exists`);
      throw error;
    }
  }

  async get(id: string): Promise<Tenant> {
    const tenant = await this.store.catalog.getTenant(id);
    if (!tenant) throw new NotFoundError(`no tenant ${id}`);
    return tenant;
  }

  list(): Promise<Tenant[]> {
    return this.store.catalog.listTenants();
  }

  /** Sets the tenant's safe baseline: a version every device of the tenant can run. */
  async setBaseline(id: string, baseline: { modelId: string; version: number }): Promise<Tenant> {
    await this.get(id);
    const model = await this.store.catalog.getModel(baseline.modelId);
    if (!model || model.tenantId !== id)
      throw new UnprocessableError(`tenant ${id} has no model ${baseline.modelId}`);
    const version = await this.store.catalog.getVersion(baseline.modelId, baseline.version);
    if (!version)
      throw new UnprocessableError(`model ${baseline.modelId} has no version ${baseline.version}`);
    if (version.status !== 'active')
      throw new UnprocessableError(`version ${baseline.version} is deprecated`);
    await this.store.catalog.setTenantBaseline(id, baseline);
    return this.get(id);
  }
}
