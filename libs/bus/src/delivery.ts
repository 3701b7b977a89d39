// What both adapters do with fetched records of one partition: dedupe, call the handler, retry with exponential
// backoff, dead-letter after maxAttempts (or at once for an unprocessable record). Returns how many records are
// done (handled, skipped as duplicates or dead-lettered), so the adapter commits exactly past those.
import {
  BusError,
  HEADER_TENANT,
  type BusObserver,
  type BusRecord,
  type DeadLetterInfo,
  type ProcessedEvents,
} from './port.js';
import { backoffDelay, type ResolvedSubscribeOptions } from './validation.js';

/**
 * Throw this from a handler (the typed layer does, for a record that fails to decode) to dead-letter the record at
 * once, without retries. `code` becomes the dead letter's errorCode.
 */
export class UnprocessableRecordError extends BusError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UnprocessableRecordError';
  }
}

export interface DeliveryContext {
  options: ResolvedSubscribeOptions;
  dedupe: ProcessedEvents | null;
  observer: BusObserver;
  /**
   * Publishes the dead letter; a throw leaves the record uncommitted (it comes again): deliver returns the records
   * done before it, or rethrows when there are none.
   */
  deadLetter(info: DeadLetterInfo): Promise<void>;
  /** True when delivery must stop before the next record (closing, paused, partition lost). */
  shouldStop(): boolean;
  /** Waits ms; resolves early when the consumer stops. */
  sleep(ms: number): Promise<void>;
}

function describe(error: unknown): { reason: string; code: string; immediate: boolean } {
  const immediate = error instanceof UnprocessableRecordError;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { reason: message.slice(0, 2_000), code: immediate ? error.code : 'handler_failed', immediate };
}

function deadLetterOf(
  record: BusRecord,
  group: string,
  reason: string,
  errorCode: string,
  attempts: number,
): DeadLetterInfo {
  return {
    eventId: record.eventId,
    tenant: record.headers[HEADER_TENANT] ?? null,
    originalTopic: record.topic,
    partition: record.partition,
    offset: record.offset,
    key: record.key,
    value: record.value,
    headers: record.headers,
    reason,
    errorCode,
    attempts,
    consumerGroup: group,
    failedAt: Date.now(),
  };
}

/** Delivers records (consecutive, one partition) and returns how many are done, in order. */
export async function deliver(ctx: DeliveryContext, records: readonly BusRecord[]): Promise<number> {
  const { options, observer } = ctx;
  const group = options.group;
  const seen = ctx.dedupe
    ? ctx.dedupe.seen(
        group,
        records.map((r) => r.eventId),
      )
    : new Set<string>();
  const processed: string[] = [];
  let done = 0;
  try {
    if (options.batchHandler) {
      const fresh = records.filter((r) => !seen.has(r.eventId));
      if (records.length > fresh.length)
        observer.consumed?.(records[0]!.topic, group, 'duplicate', records.length - fresh.length);
      if (fresh.length > 0 && !(await runBatch(ctx, fresh))) return 0;
      processed.push(...fresh.map((r) => r.eventId));
      return (done = records.length);
    }
    const handler = options.handler!;
    for (const record of records) {
      if (ctx.shouldStop()) return done;
      if (seen.has(record.eventId)) {
        observer.consumed?.(record.topic, group, 'duplicate', 1);
        done++;
        continue;
      }
      let attempt = 1;
      for (;;) {
        const started = performance.now();
        try {
          await handler({ ...record, attempt });
          observer.handlerDuration?.(record.topic, group, (performance.now() - started) / 1_000);
          observer.consumed?.(record.topic, group, 'ok', 1);
          break;
        } catch (error) {
          observer.handlerDuration?.(record.topic, group, (performance.now() - started) / 1_000);
          const { reason, code, immediate } = describe(error);
          if (immediate || attempt >= options.maxAttempts) {
            try {
              await ctx.deadLetter(deadLetterOf(record, group, reason, code, attempt));
            } catch (deadLetterFailure) {
              // Stop before this record but keep what is done, so the adapter commits it: otherwise every retry would
              // run the records before it again. This record comes first in the next fetch, and fails loudly there.
              if (done > 0) return done;
              throw deadLetterFailure;
            }
            observer.consumed?.(record.topic, group, 'dead_letter', 1);
            observer.deadLettered?.(record.topic, group, code);
            break;
          }
          observer.consumed?.(record.topic, group, 'retry', 1);
          await ctx.sleep(backoffDelay(options.backoff, attempt));
          if (ctx.shouldStop()) return done;
          attempt++;
        }
      }
      seen.add(record.eventId); // the same event id twice in one batch counts once
      processed.push(record.eventId);
      done++;
    }
    return done;
  } finally {
    if (ctx.dedupe && processed.length > 0) ctx.dedupe.markProcessed(group, processed);
  }
}

async function runBatch(ctx: DeliveryContext, records: BusRecord[]): Promise<boolean> {
  const { options, observer } = ctx;
  const topic = records[0]!.topic;
  let attempt = 1;
  for (;;) {
    const started = performance.now();
    try {
      await options.batchHandler!(records.map((r) => ({ ...r, attempt })));
      observer.handlerDuration?.(topic, options.group, (performance.now() - started) / 1_000);
      observer.consumed?.(topic, options.group, 'ok', records.length);
      return true;
    } catch (error) {
      observer.handlerDuration?.(topic, options.group, (performance.now() - started) / 1_000);
      const { reason, code, immediate } = describe(error);
      if (immediate || attempt >= options.maxAttempts) {
        // The batch as a whole failed: each of its records is dead-lettered with the reason.
        for (const record of records)
          await ctx.deadLetter(deadLetterOf(record, options.group, reason, code, attempt));
        observer.consumed?.(topic, options.group, 'dead_letter', records.length);
        for (let i = 0; i < records.length; i++) observer.deadLettered?.(topic, options.group, code);
        return true;
      }
      observer.consumed?.(topic, options.group, 'retry', records.length);
      await ctx.sleep(backoffDelay(options.backoff, attempt));
      if (ctx.shouldStop()) return false;
      attempt++;
    }
  }
}
