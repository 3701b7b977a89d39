// One subscription of the embedded bus: a member of its consumer group (membership.ts) and the poll loop that
// fetches each owned partition from the bus file, hands the records to the shared delivery core (../delivery.ts),
// and commits past what is done. Wakes at once on a publish in this process; polls for other processes' writes.
import { deliver, type DeliveryContext } from '../delivery.js';
import type { BusObserver, DeadLetterInfo, ProcessedEvents, BusRecord, Subscription } from '../port.js';
import type { ResolvedSubscribeOptions } from '../validation.js';
import type { TopicPartition } from './assignment.js';
import { GroupMembership, type MembershipTimings } from './membership.js';
import { parseHeaders, tpKey, type BusStore } from './store.js';
import { onPublish } from './wake.js';

export interface SubscriptionTimings extends MembershipTimings {
  /** How often the loop looks for other processes' writes. */
  pollIntervalMs: number;
}

/** What a subscription needs from the bus that made it. */
export interface SubscriptionHost {
  readonly path: string;
  readonly store: BusStore;
  readonly observer: BusObserver;
  readonly isClosed: boolean;
  deadLetter(info: DeadLetterInfo): Promise<void>;
  /** Called once the subscription has closed. */
  forget(sub: EmbeddedSubscription): void;
}

interface RecordRow {
  off: number;
  rkey: string | null;
  val: Uint8Array;
  headers: string;
  event_id: string;
  ts: number;
}

/** One member of a consumer group. */
export class EmbeddedSubscription implements Subscription {
  readonly group: string;
  readonly topics: readonly string[];
  lastError: string | null = null;
  private readonly host: SubscriptionHost;
  private readonly membership: GroupMembership;
  private readonly options: ResolvedSubscribeOptions;
  private readonly timings: SubscriptionTimings;
  private readonly delivery: Omit<DeliveryContext, 'shouldStop'>;
  private owned = new Map<string, TopicPartition>();
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private loop: Promise<void> = Promise.resolve();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unlisten: () => void = () => {};
  private dirty = true;
  private wakers = new Set<() => void>();
  private closeWaiters = new Set<() => void>();
  private nextRebalanceAt = 0;

  constructor(
    host: SubscriptionHost,
    options: ResolvedSubscribeOptions,
    dedupe: ProcessedEvents | null,
    timings: SubscriptionTimings,
  ) {
    this.host = host;
    this.options = options;
    this.group = options.group;
    this.topics = [...new Set(options.topics)];
    this.timings = timings;
    this.membership = new GroupMembership(host.store, this.group, this.topics, timings);
    this.delivery = {
      options,
      dedupe,
      observer: host.observer,
      deadLetter: (info) => host.deadLetter(info),
      sleep: (ms) => this.wait(ms, false),
    };
  }

  get memberId(): string {
    return this.membership.memberId;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** Joins the group and claims partitions synchronously, so a publish right after subscribe() is seen. */
  start(): void {
    this.membership.join(this.options.fromBeginning);
    this.rebalance();
    this.unlisten = onPublish(this.host.path, (topics) => {
      if (this.topics.some((t) => topics.has(t))) this.wake();
    });
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.timings.heartbeatIntervalMs);
    this.loop = this.run();
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.wake();
  }

  private wake(): void {
    this.dirty = true;
    for (const w of this.wakers) w();
  }

  /** Waits ms, or less when woken (a publish) unless onlyClose; always ends early on close. */
  private wait(ms: number, wakeOnPublish = true): Promise<void> {
    if (this.closing) return Promise.resolve();
    if (wakeOnPublish && this.dirty) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        this.closeWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (wakeOnPublish) this.wakers.add(done);
      else this.closeWaiters.add(done);
    });
  }

  private heartbeat(): void {
    if (this.closing || this.host.isClosed) return;
    try {
      const still = this.membership.heartbeat(Date.now());
      for (const k of [...this.owned.keys()]) if (!still.has(k)) this.owned.delete(k); // lost while we were silent
      this.lastError = null;
    } catch (error) {
      this.lastError = `heartbeat failed: ${(error as Error).message}`;
    }
  }

  /** Takes this member's share of the partitions now (between batches only). */
  private rebalance(): void {
    const now = Date.now();
    this.owned = this.membership.rebalance(now);
    this.nextRebalanceAt = now + this.timings.heartbeatIntervalMs;
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      try {
        if (Date.now() >= this.nextRebalanceAt) this.rebalance();
        if (this.isPaused || this.owned.size === 0) {
          await this.wait(Math.max(1, this.nextRebalanceAt - Date.now()));
          this.dirty = false;
          continue;
        }
        this.dirty = false;
        // allSettled, not all: a failing partition must not send the loop round again while another partition's
        // handler is still in flight (it would be delivered twice at once, and close() would not wait for it).
        const settled = await Promise.allSettled(
          [...this.owned.values()].map((tp) => this.processPartition(tp.topic, tp.partition)),
        );
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
        this.lastError = null;
        if (!settled.some((s) => s.status === 'fulfilled' && s.value)) {
          await this.wait(
            Math.max(1, Math.min(this.timings.pollIntervalMs, this.nextRebalanceAt - Date.now())),
          );
        }
      } catch (error) {
        if (this.host.isClosed) return;
        this.lastError = error instanceof Error ? error.message : String(error);
        await this.wait(Math.min(1_000, this.timings.pollIntervalMs * 5), false);
      }
    }
  }

  /** Fetches one batch of a partition from the committed offset, delivers it, commits past what is done. */
  private async processPartition(topic: string, partition: number): Promise<boolean> {
    const k = tpKey(topic, partition);
    const committed = this.membership.committed(topic, partition);
    const rows = this.host.store
      .stmt(
        'SELECT off, rkey, val, headers, event_id, ts FROM bus_records WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?',
      )
      .all(topic, partition, committed, this.options.maxBatchSize) as unknown as RecordRow[];
    if (rows.length === 0) return false;
    const records: BusRecord[] = rows.map((r) => ({
      topic,
      partition,
      offset: String(r.off),
      key: r.rkey,
      value: Buffer.from(r.val.buffer, r.val.byteOffset, r.val.byteLength),
      headers: parseHeaders(r.headers),
      eventId: r.event_id,
      timestamp: r.ts,
      attempt: 1,
    }));
    const done = await deliver(
      { ...this.delivery, shouldStop: () => this.closing || this.isPaused || !this.owned.has(k) },
      records,
    );
    if (done > 0) this.commit(topic, partition, rows[done - 1]!.off + 1);
    return done > 0;
  }

  private commit(topic: string, partition: number, next: number): void {
    if (this.host.isClosed) return;
    if (!this.membership.commit(topic, partition, next)) this.owned.delete(tpKey(topic, partition));
  }

  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    for (const w of [...this.wakers, ...this.closeWaiters]) w();
    this.unlisten();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.loop; // in-flight handlers finish and commit
    if (!this.host.isClosed) {
      try {
        this.membership.leave();
      } catch {
        // The lease expires on its own.
      }
    }
    this.host.forget(this);
  }
}
