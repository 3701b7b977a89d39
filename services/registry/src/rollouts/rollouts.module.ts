import { Module } from '@nestjs/common';
import { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { RolloutScheduler } from './rollout-scheduler.service.js';
import { RolloutsController } from './rollouts.controller.js';
import { RolloutsService } from './rollouts.service.js';

@Module({
  controllers: [RolloutsController],
  providers: [RolloutsService, RolloutScheduler, ManifestSigner],
  exports: [RolloutsService, ManifestSigner],
})
export class RolloutsModule {}
