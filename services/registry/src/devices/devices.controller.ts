import { Controller, Get, Headers, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ADMIN_SECURITY,
  AdminOnly,
  AdminToken,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  IdParam,
  ValidBody,
  ValidQuery,
} from '@edgefl/service-kit';
import type { JWK } from 'jose';
import { z } from 'zod';
import type { Device } from '../storage/records.js';
import { DevicesService } from './devices.service.js';

const Hardware = z.strictObject({
  class: z.string().min(1).max(64).optional(),
  ramBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  firmware: z.string().min(1).max(64).optional(),
  attributes: z.record(z.string().max(64), z.string().max(256)).optional(),
});
const RegisterDevice = z.strictObject({
  id: Id,
  publicKey: z
    .string()
    .min(1)
    .max(1024)
    .describe('Ed25519 public key: base64 of the raw 32 bytes, or PEM (SPKI)'),
  modelId: Id.optional(),
  group: z.string().min(1).max(64).optional(),
  hardware: Hardware.optional(),
});
const UpdateDevice = RegisterDevice.omit({ id: true, publicKey: true });
const TokenRequest = z.strictObject({
  assertion: z
    .string()
    .min(1)
    .max(4096)
    .describe(
      'A JWT the device signed (EdDSA) with sub = its id, aud = "edgefl-registry", iat, exp (≤ 5 min), jti',
    ),
});
const RevokeDevice = z.strictObject({
  reason: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('Why (published in the REVOKED event; never a secret)'),
});
const RotateKey = z.strictObject({
  publicKey: z
    .string()
    .min(1)
    .max(1024)
    .describe('The new Ed25519 public key: base64 of the raw 32 bytes, or PEM (SPKI)'),
  assertion: z
    .string()
    .min(1)
    .max(4096)
    .optional()
    .describe('Without the admin token: a one-time assertion signed with the CURRENT key (as for /token)'),
});
const Limit = z.coerce.number().int().min(1).max(1000).default(100);
const After = z.string().max(64).default('');

@ApiTags('devices')
@Controller('v1')
export class DevicesController {
  constructor(
    private readonly devices: DevicesService,
    private readonly adminToken: AdminToken,
  ) {}

  @Post('tenants/:tenant/devices')
  @AdminOnly()
  @HttpCode(201)
  @ApiOperation({ summary: 'Register a device (public key, hardware attributes, group) to a tenant' })
  @DocIdParams('tenant')
  @DocBody(RegisterDevice)
  register(
    @IdParam('tenant') tenant: string,
    @ValidBody(RegisterDevice) body: z.infer<typeof RegisterDevice>,
  ): Promise<Device> {
    return this.devices.register(tenant, body);
  }

  @Get('tenants/:tenant/devices')
  @AdminOnly()
  @ApiOperation({ summary: "List a tenant's devices (keyset pagination by id)" })
  @DocIdParams('tenant')
  @DocQuery('limit', Limit)
  @DocQuery('after', After)
  list(
    @IdParam('tenant') tenant: string,
    @ValidQuery('limit', Limit) limit: number,
    @ValidQuery('after', After) after: string,
  ): Promise<Device[]> {
    return this.devices.list(tenant, limit, after);
  }

  @Get('devices/:device')
  @AdminOnly()
  @ApiOperation({ summary: 'Get a device' })
  @DocIdParams('device')
  get(@IdParam('device') device: string): Promise<Device> {
    return this.devices.get(device);
  }

  @Patch('devices/:device')
  @AdminOnly()
  @ApiOperation({ summary: "Change a device's model, group or hardware attributes" })
  @DocIdParams('device')
  @DocBody(UpdateDevice)
  update(
    @IdParam('device') device: string,
    @ValidBody(UpdateDevice) body: z.infer<typeof UpdateDevice>,
  ): Promise<Device> {
    return this.devices.update(device, body);
  }

  @Post('devices/:device/revoke')
  @AdminOnly()
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Revoke a device for good: no new tokens, held tokens refused, DeviceLifecycle REVOKED published',
  })
  @DocIdParams('device')
  @DocBody(RevokeDevice)
  revoke(
    @IdParam('device') device: string,
    @ValidBody(RevokeDevice) body: z.infer<typeof RevokeDevice>,
  ): Promise<Device> {
    return this.devices.revoke(device, body.reason);
  }

  @Post('devices/:device/rotate-key')
  @HttpCode(200)
  @ApiBearerAuth(ADMIN_SECURITY)
  @ApiOperation({
    summary:
      "Replace a device's key (admin token, or an assertion signed with the current key); earlier tokens refused",
  })
  @DocIdParams('device')
  @DocBody(RotateKey)
  rotateKey(
    @IdParam('device') device: string,
    @Headers('authorization') authorization: string | undefined,
    @ValidBody(RotateKey) body: z.infer<typeof RotateKey>,
  ): Promise<Device> {
    return this.devices.rotateKey(device, body, this.adminToken.authorizes(authorization));
  }

  @Post('devices/:device/token')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a device-signed assertion for a short-lived EdDSA JWT for MQTT' })
  @DocIdParams('device')
  @DocBody(TokenRequest)
  token(@IdParam('device') device: string, @ValidBody(TokenRequest) body: z.infer<typeof TokenRequest>) {
    return this.devices.issueToken(device, body.assertion);
  }

  @Get('device-tokens/jwks.json')
  @ApiOperation({ summary: 'Public keys (JWKS) that verify device tokens' })
  jwks(): Promise<{ keys: JWK[] }> {
    return this.devices.tokens.jwks();
  }
}
