import { Module } from '@nestjs/common';
import { GarbageSweep } from '../artifacts/garbage-sweep.service.js';
import { DevicesModule } from '../devices/devices.module.js';
import { ModelsController } from './models.controller.js';
import { ModelsService } from './models.service.js';
import { VersionWriter } from './version-writer.service.js';

@Module({
  imports: [DevicesModule],
  controllers: [ModelsController],
  providers: [ModelsService, VersionWriter, GarbageSweep],
  exports: [ModelsService, VersionWriter],
})
export class ModelsModule {}
