import { Module } from '@nestjs/common';
import { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { ModelsModule } from '../models/models.module.js';
import { RolloutEngine } from './rollout-engine.service.js';
import { RolloutIntake } from './rollout-intake.service.js';
import { RolloutScheduler } from './rollout-scheduler.service.js';
import { RolloutsController } from './rollouts.controller.js';
import { RolloutsService } from './rollouts.service.js';

@Module({
  imports: [ModelsModule],
  controllers: [RolloutsController],
  providers: [RolloutsService, RolloutEngine, RolloutIntake, RolloutScheduler, ManifestSigner],
  exports: [RolloutsService, RolloutEngine, RolloutIntake, ManifestSigner],
})
export class RolloutsModule {}
