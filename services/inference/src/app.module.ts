import { Module, type DynamicModule } from '@nestjs/common';
import { OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { InferenceConfig } from './config.js';
import { inferenceOpenApi } from './openapi/openapi.js';

/** The inference: cloud inference tier (Open Inference Protocol), A/B and shadow. */
@Module({})
export class InferenceAppModule {
  static forRoot(config: InferenceConfig, logger: Logger): DynamicModule {
    return {
      module: InferenceAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger }),
        OpenApiModule.forRoot(inferenceOpenApi),
      ],
    };
  }
}
