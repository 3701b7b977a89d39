import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ProblemException } from '@edgefl/service-kit';
import { z } from 'zod';
import { RoundRequestError, StartRoundRequest } from './round-settings.js';
import type { RoundRow } from './round-store.js';
import { RoundsService } from './rounds.service.js';

const ListQuery = z.strictObject({
  tenant: z.string().min(1).optional(),
  modelId: z.string().min(1).optional(),
  state: z.enum(['OPEN', 'CLOSED', 'AGGREGATED', 'DONE', 'CANCELLED', 'FAILED']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const problemOf = (error: unknown): unknown => {
  if (error instanceof RoundRequestError)
    return new ProblemException({
      type: `urn:edgefl:aggregator:${error.code}`,
      title: error.code,
      status: error.status,
      detail: error.message,
    });
  return error;
};

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const detail = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new ProblemException({
    type: 'urn:edgefl:aggregator:invalid-request',
    title: 'invalid-request',
    status: 400,
    detail,
  });
}

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
@Controller('v1/rounds')
export class RoundsController {
  constructor(private readonly rounds: RoundsService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Open a round (400 for impossible settings, 409 over the DP budget)' })
  async start(@Body() body: unknown) {
    return roundView(
      await this.rounds
        .start(parse(StartRoundRequest, body))
        .catch((e: unknown) => Promise.reject(problemOf(e))),
    );
  }

  @Get()
  @ApiOperation({ summary: 'List rounds, newest first' })
  list(@Query() query: unknown) {
    return { rounds: this.rounds.list(parse(ListQuery, query)).map(roundView) };
  }

  @Get(':round')
  @ApiOperation({ summary: 'One round' })
  show(@Param('round') round: string) {
    try {
      return roundView(this.rounds.get(round));
    } catch (e) {
      throw problemOf(e);
    }
  }

  @Get(':round/report')
  @ApiOperation({ summary: 'Participants, dropouts, rejections with reasons, norms, outliers, ε' })
  report(@Param('round') round: string) {
    try {
      return this.rounds.report(round);
    } catch (e) {
      throw problemOf(e);
    }
  }

  @Post(':round/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel an open round (RoundClosed ABORTED, no result)' })
  async cancel(@Param('round') round: string) {
    return roundView(await this.rounds.cancel(round).catch((e: unknown) => Promise.reject(problemOf(e))));
  }
}
