import { Module } from '@nestjs/common';
import { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { ModelsModule } from '../models/models.module.js';
import { RolloutScheduler } from './rollout-scheduler.service.js';
import { RolloutsController } from './rollouts.controller.js';
import { RolloutsService } from './rollouts.service.js';

@Module({
  imports: [ModelsModule],
  controllers: [RolloutsController],
  providers: [RolloutsService, RolloutScheduler, ManifestSigner],
  exports: [RolloutsService, ManifestSigner],
})
export class RolloutsModule {}
