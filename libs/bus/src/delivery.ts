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
  type RecordHandler,
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

/** What a delivery hands its adapter to commit, within a batch and at its end. */
export interface Progress {
  /** The last record done (handled, skipped as a duplicate, or dead-lettered): commit one past it. Null: none new. */
  last: BusRecord | null;
  /** Event ids handled since the previous progress: recorded as processed with it (when dedupe is on). */
  processed: string[];
  /** Dead letters of records in this progress, written with it (one transaction on the embedded bus). */
  deadLetters: DeadLetterInfo[];
  /**
   * True at the end of a delivery that stopped cleanly (done, paused, closing): the next delivery from here is a
   * fresh start. False while the delivery goes on from one past `last`: a crash from here on counts against that
   * record (see DeliveryContext.begin).
   */
  final: boolean;
}

export interface DeliveryContext {
  options: ResolvedSubscribeOptions;
  /** Processed event ids when dedupe is on: looked up before a batch; ids are marked with each progress commit. */
  dedupe: ProcessedEvents | null;
  observer: BusObserver;
  /**
   * Persists that a delivery starts at `first` (before any handler runs) and returns how many earlier deliveries
   * started at that same record never ended, i.e. how often a process died on it.
   */
  begin(first: BusRecord): Promise<number>;
  /**
   * Commits progress (offset past `last`, processed ids, dead letters). Resolves false when the partition is no
   * longer this member's (delivery stops, nothing was written); a throw means nothing was written either.
   */
  commit(progress: Progress): Promise<boolean>;
  /** True when delivery must stop before the next record (closing, paused, partition lost, lease gone). */
  shouldStop(): boolean | Promise<boolean>;
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

/**
 * Delivers records (consecutive, one partition) and returns how many are done, in order. Progress is committed
 * every `commitEvery` records or `commitIntervalMs`, and after each dead letter (with it); a delivery that starts
 * where an earlier one died commits after every record, so the record that kills its process is found and, after
 * `maxCrashes` deaths, dead-lettered without running again.
 */
export async function deliver(ctx: DeliveryContext, records: readonly BusRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const crashes = await ctx.begin(records[0]!);
  try {
    return await deliverFrom(ctx, records, crashes);
  } catch (error) {
    // Not a crash of the process: end this delivery, so the next one is not counted as a crash recovery.
    await ctx.commit({ last: null, processed: [], deadLetters: [], final: true }).catch(() => undefined);
    throw error;
  }
}

async function deliverFrom(
  ctx: DeliveryContext,
  records: readonly BusRecord[],
  crashes: number,
): Promise<number> {
  const { options, observer } = ctx;
  const group = options.group;
  // After a crash, go one record at a time until the delivery ends: each commit then names the next record as the
  // one in flight, so a crash on it counts against it.
  const every = crashes > 0 ? 1 : options.commitEvery;
  const seen = ctx.dedupe
    ? ctx.dedupe.seen(
        group,
        records.map((r) => r.eventId),
      )
    : new Set<string>();
  let pending: Progress = { last: null, processed: [], deadLetters: [], final: false };
  let sincePending = 0;
  let lastCommitAt = Date.now();
  let done = 0;
  let owned = true;
  let failed = false; // a dead letter could not be written: stop before its record
  const commit = async (final: boolean): Promise<boolean> => {
    const progress = { ...pending, final };
    pending = { last: null, processed: [], deadLetters: [], final: false };
    sincePending = 0;
    lastCommitAt = Date.now();
    if (!(await ctx.commit(progress))) owned = false;
    return owned;
  };
  const markDone = (record: BusRecord, processed: boolean) => {
    pending.last = record;
    if (processed) pending.processed.push(record.eventId);
    seen.add(record.eventId); // the same event id twice in one batch counts once
    sincePending++;
    done++;
  };
  /** Dead letter and the offset past it in one commit, after the progress before it (kept if the letter fails). */
  const deadLetter = async (info: DeadLetterInfo, record: BusRecord): Promise<boolean> => {
    if (pending.last !== null && !(await commit(false))) return false;
    pending = { last: record, processed: [], deadLetters: [info], final: false };
    try {
      if (!(await commit(false))) return false;
    } catch (failure) {
      // This record comes first in the next fetch, and fails loudly there; what was done before it is committed.
      if (done === 0) throw failure;
      failed = true;
      return false;
    }
    observer.consumed?.(record.topic, group, 'dead_letter', 1);
    observer.deadLettered?.(record.topic, group, info.errorCode);
    done++;
    return true;
  };

  if (crashes >= options.maxCrashes) {
    const first = records[0]!;
    const info = deadLetterOf(
      first,
      group,
      `crashed its consumer ${crashes} times`,
      'consumer_crashed',
      crashes,
    );
    await deadLetter(info, first);
  }

  if (options.batchHandler) {
    // The whole fetch at once, or one record at a time after a crash.
    const size = crashes > 0 ? 1 : records.length;
    for (let i = done; i < records.length && owned && !failed; i += size) {
      if (await ctx.shouldStop()) break;
      const chunk = records.slice(i, i + size);
      const fresh = chunk.filter((r) => !seen.has(r.eventId));
      if (chunk.length > fresh.length)
        observer.consumed?.(chunk[0]!.topic, group, 'duplicate', chunk.length - fresh.length);
      const outcome = fresh.length > 0 ? await runBatch(ctx, fresh) : 'ok';
      if (outcome === 'stopped') break;
      if (outcome !== 'ok') {
        // The batch as a whole failed: each of its records is dead-lettered with the reason.
        for (const record of chunk) {
          if (!fresh.includes(record)) markDone(record, false);
          else if (
            !(await deadLetter(
              deadLetterOf(record, group, outcome.reason, outcome.code, outcome.attempts),
              record,
            ))
          )
            break;
        }
        continue;
      }
      for (const record of chunk) markDone(record, fresh.includes(record));
      if (i + size < records.length) await commit(false);
    }
    if (owned) await commit(true);
    return done;
  }

  const handler = options.handler!;
  for (let i = done; i < records.length && owned && !failed; i++) {
    const record = records[i]!;
    const stop = ctx.shouldStop(); // a promise only when a lease check is due
    if (stop === true || (stop !== false && (await stop))) break;
    if (seen.has(record.eventId)) {
      observer.consumed?.(record.topic, group, 'duplicate', 1);
      markDone(record, false);
    } else {
      const outcome = await runRecord(ctx, handler, record);
      if (outcome === 'stopped') break;
      if (outcome === 'ok') markDone(record, true);
      else if (
        !(await deadLetter(
          deadLetterOf(record, group, outcome.reason, outcome.code, outcome.attempts),
          record,
        ))
      )
        break;
    }
    const due = sincePending >= every || Date.now() - lastCommitAt >= options.commitIntervalMs;
    if (due && i < records.length - 1) await commit(false); // the last one commits with the end of the delivery
  }
  if (owned) await commit(true);
  return done;
}

type Outcome = 'ok' | 'stopped' | { reason: string; code: string; attempts: number };

/** Runs the handler on one record, retrying with backoff; the failure to dead-letter, or 'stopped'. */
async function runRecord(ctx: DeliveryContext, handler: RecordHandler, record: BusRecord): Promise<Outcome> {
  const { options, observer } = ctx;
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      await handler({ ...record, attempt });
      observer.handlerDuration?.(record.topic, options.group, (performance.now() - started) / 1_000);
      observer.consumed?.(record.topic, options.group, 'ok', 1);
      return 'ok';
    } catch (error) {
      observer.handlerDuration?.(record.topic, options.group, (performance.now() - started) / 1_000);
      const { reason, code, immediate } = describe(error);
      if (immediate || attempt >= options.maxAttempts) return { reason, code, attempts: attempt };
      observer.consumed?.(record.topic, options.group, 'retry', 1);
      await ctx.sleep(backoffDelay(options.backoff, attempt));
      if (await ctx.shouldStop()) return 'stopped';
    }
  }
}

async function runBatch(ctx: DeliveryContext, records: BusRecord[]): Promise<Outcome> {
  const { options, observer } = ctx;
  const topic = records[0]!.topic;
  let attempt = 1;
  for (;;) {
    const started = performance.now();
    try {
      await options.batchHandler!(records.map((r) => ({ ...r, attempt })));
      observer.handlerDuration?.(topic, options.group, (performance.now() - started) / 1_000);
      observer.consumed?.(topic, options.group, 'ok', records.length);
      return 'ok';
    } catch (error) {
      observer.handlerDuration?.(topic, options.group, (performance.now() - started) / 1_000);
      const { reason, code, immediate } = describe(error);
      if (immediate || attempt >= options.maxAttempts) return { reason, code, attempts: attempt };
      observer.consumed?.(topic, options.group, 'retry', records.length);
      await ctx.sleep(backoffDelay(options.backoff, attempt));
      if (await ctx.shouldStop()) return 'stopped';
      attempt++;
    }
  }
}
