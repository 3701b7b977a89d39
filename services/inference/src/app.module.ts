import { Module, type DynamicModule } from '@nestjs/common';
import { AdminAuthModule, OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { TenantAuth, TenantGuard } from './auth/tenant-auth.js';
import type { InferenceConfig } from './config.js';
import { EscalationService } from './escalation/escalation.service.js';
import { ExperimentsController } from './experiments/experiments.controller.js';
import { GrpcServer } from './grpc/grpc.server.js';
import { OipController } from './oip/oip.controller.js';
import { ADMIN_TOKEN_FILE, inferenceOpenApi } from './openapi/openapi.js';
import { InferenceService } from './serving/inference.service.js';
import { INFERENCE_CONFIG } from './tokens.js';

/** The inference: cloud inference tier (Open Inference Protocol), A/B and shadow. */
@Module({})
export class InferenceAppModule {
  static forRoot(config: InferenceConfig, logger: Logger): DynamicModule {
    return {
      module: InferenceAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger }),
        AdminAuthModule.forRoot({
          token: config.own.adminToken,
          dataDir: config.dataDir,
          tokenFile: ADMIN_TOKEN_FILE,
          envName: 'INFERENCE_ADMIN_TOKEN',
          realm: 'edgefl-inference-admin',
        }),
        OpenApiModule.forRoot(inferenceOpenApi),
      ],
      controllers: [OipController, ExperimentsController],
      providers: [
        { provide: INFERENCE_CONFIG, useValue: config },
        TenantAuth,
        TenantGuard,
        InferenceService,
        EscalationService,
        GrpcServer,
      ],
    };
  }
}
