import { Module } from '@nestjs/common';
import { DevicesModule } from '../devices/devices.module.js';
import { ModelsController } from './models.controller.js';
import { ModelsService } from './models.service.js';
import { VersionWriter } from './version-writer.service.js';

@Module({
  imports: [DevicesModule],
  controllers: [ModelsController],
  providers: [ModelsService, VersionWriter],
  exports: [ModelsService, VersionWriter],
})
export class ModelsModule {}
