import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { DownlinkService } from './downlink.service.js';
import { ReleasesService } from './releases.service.js';

/** Bus to devices: retained release manifests, round invitations, secure aggregation, inference replies. */
@Module({ imports: [AuthModule], providers: [ReleasesService, DownlinkService] })
export class DownlinkModule {}
