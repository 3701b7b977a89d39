import { Module } from '@nestjs/common';
import { DeviceDirectory } from './device-directory.js';
import { LifecycleConsumer } from './lifecycle.consumer.js';
import { SessionsService } from './sessions.service.js';

/** Who a device is (token or certificate) and whether the registry still lets it in. */
@Module({
  providers: [DeviceDirectory, SessionsService, LifecycleConsumer],
  exports: [DeviceDirectory, SessionsService, LifecycleConsumer],
})
export class AuthModule {}
