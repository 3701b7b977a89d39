import { Controller, Get, HttpCode, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly, DocBody, DocIdParams, Id, IdParam, ValidBody } from '@edgefl/service-kit';
import { z } from 'zod';
import type { Tenant } from '../storage/records.js';
import { TenantsService } from './tenants.service.js';
import { VersionNumber } from '../http/version-param.js';

const CreateTenant = z.strictObject({ id: Id, name: z.string().min(1).max(200) });
const SetBaseline = z.strictObject({ modelId: Id, version: VersionNumber });

@ApiTags('tenants')
@AdminOnly()
@Controller('v1/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a tenant (and its key-encryption key for artifacts at rest)' })
  @DocBody(CreateTenant)
  create(@ValidBody(CreateTenant) body: z.infer<typeof CreateTenant>): Promise<Tenant> {
    return this.tenants.create(body);
  }

  @Get()
  @ApiOperation({ summary: 'List tenants' })
  list(): Promise<Tenant[]> {
    return this.tenants.list();
  }

  @Get(':tenant')
  @ApiOperation({ summary: 'Get a tenant' })
  @DocIdParams('tenant')
  get(@IdParam('tenant') tenant: string): Promise<Tenant> {
    return this.tenants.get(tenant);
  }

  @Put(':tenant/baseline')
  @ApiOperation({ summary: "Set the tenant's safe baseline model version (what devices fall back to)" })
  @DocIdParams('tenant')
  @DocBody(SetBaseline)
  setBaseline(
    @IdParam('tenant') tenant: string,
    @ValidBody(SetBaseline) body: z.infer<typeof SetBaseline>,
  ): Promise<Tenant> {
    return this.tenants.setBaseline(tenant, body);
  }
}
