import { Module } from '@nestjs/common';
import { DevicesModule } from '../devices/devices.module.js';
import { ModelsModule } from '../models/models.module.js';
import { RolloutsModule } from '../rollouts/rollouts.module.js';
import { ManifestController } from './manifest.controller.js';
import { ManifestService } from './manifest.service.js';

@Module({
  imports: [DevicesModule, ModelsModule, RolloutsModule],
  controllers: [ManifestController],
  providers: [ManifestService],
})
export class ManifestModule {}
