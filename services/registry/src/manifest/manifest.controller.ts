import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { DocIdParams, DocQuery, Id, IdParam, ValidQuery } from '@edgefl/service-kit';
import { DeviceAuthGuard } from '../devices/device-auth.guard.js';
import type { Response } from 'express';
import { ManifestService } from './manifest.service.js';
import { ManifestSigner } from './manifest-signer.service.js';
import { VersionNumber } from '../http/version-param.js';

@ApiTags('manifests')
@Controller('v1')
export class ManifestController {
  constructor(
    private readonly manifests: ManifestService,
    private readonly signer: ManifestSigner,
  ) {}

  @Get('devices/:device/manifest')
  @UseGuards(DeviceAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The signed manifest of the version this device should run now',
    description:
      'Rollout assignment (hash of device and release) and targeting pick the release version or the stable one; a device older than the compatibility window gets a full download only; a device that cannot run the model gets the tenant safe baseline.',
  })
  @DocIdParams('device')
  @DocQuery('model', Id)
  @DocQuery('current', VersionNumber)
  async manifest(
    @IdParam('device') device: string,
    @ValidQuery('model', Id.optional()) model: string | undefined,
    @ValidQuery('current', VersionNumber.optional()) current: number | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const body = await this.manifests.forDevice(device, { model, current });
    res.status(200).type('application/json').setHeader('Cache-Control', 'no-store').send(body);
  }

  @Get('release-keys')
  @ApiOperation({ summary: 'The public keys that sign release manifests (what devices pin)' })
  releaseKeys() {
    return this.signer.trustedKeys();
  }
}
