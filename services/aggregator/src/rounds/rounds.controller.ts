import { Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  AdminOnly,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  IdParam,
  ValidBody,
  ZodParamPipe,
} from '@edgefl/service-kit';
import { z } from 'zod';
import { StartRoundRequest } from './round-settings.js';
import type { RoundRow } from './round-store.js';
import { RoundsService } from './rounds.service.js';

const RoundStateSchema = z.enum(['OPEN', 'CLOSED', 'AGGREGATED', 'DONE', 'CANCELLED', 'FAILED']);
const Limit = z.coerce.number().int().min(1).max(1000).default(100);
const ListQuery = z.strictObject({
  tenant: Id.optional(),
  modelId: Id.optional(),
  state: RoundStateSchema.optional(),
  limit: Limit,
});

/** What an operator sees of a round (never the key material or the weights). */
export function roundView(r: RoundRow) {
  return {
    roundId: r.roundId,
    tenant: r.tenant,
    modelId: r.modelId,
    state: r.state,
    settings: r.settings,
    parameters: r.shape.reduce((a, b) => a + b, 0),
    openedAt: r.openedAt,
    quorumMetAt: r.quorumMetAt,
    closedAt: r.closedAt,
    closeReason: r.closeReason,
    closeDetail: r.closeDetail,
    epsilon: r.epsilon,
    epsilonTotal: r.epsilonTotal,
    result: r.result,
  };
}

@ApiTags('rounds')
@AdminOnly()
@Controller('v1/rounds')
export class RoundsController {
  constructor(private readonly rounds: RoundsService) {}

  @Post()
  @HttpCode(201)
  @DocBody(StartRoundRequest)
  @ApiOperation({
    summary: 'Open a round (400 for impossible settings, 409 over the DP budget, 422 malformed)',
  })
  async start(@ValidBody(StartRoundRequest) body: StartRoundRequest) {
    return roundView(await this.rounds.start(body));
  }

  @Get()
  @DocQuery('tenant', Id)
  @DocQuery('modelId', Id)
  @DocQuery('state', RoundStateSchema)
  @DocQuery('limit', Limit)
  @ApiOperation({ summary: 'List rounds, newest first' })
  list(@Query(new ZodParamPipe(ListQuery, 'query')) query: z.output<typeof ListQuery>) {
    return { rounds: this.rounds.list(query).map(roundView) };
  }

  @Get(':round')
  @DocIdParams('round')
  @ApiOperation({ summary: 'One round' })
  show(@IdParam('round') round: string) {
    return roundView(this.rounds.get(round));
  }

  @Get(':round/report')
  @DocIdParams('round')
  @ApiOperation({ summary: 'Participants, dropouts, rejections with reasons, norms, outliers, ε' })
  report(@IdParam('round') round: string) {
    return this.rounds.report(round);
  }

  @Post(':round/cancel')
  @HttpCode(200)
  @DocIdParams('round')
  @ApiOperation({ summary: 'Cancel an open round (RoundClosed ABORTED, no result)' })
  async cancel(@IdParam('round') round: string) {
    return roundView(await this.rounds.cancel(round));
  }
}
