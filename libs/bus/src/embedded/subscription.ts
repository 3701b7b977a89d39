// One subscription of the embedded bus: a member of its consumer group (membership.ts) and the loop that keeps
// each owned partition moving on its own (a bounded number at once): fetch from the committed offset, hand the
// records to the shared delivery core (../delivery.ts), commit its progress. Wakes at once on a publish in this
// process; polls for other processes' writes.
import { deliver, type DeliveryContext, type Progress } from '../delivery.js';
import type { BusObserver, BusRecord, DeadLetterInfo, ProcessedEvents, Subscription } from '../port.js';
import type { NormalisedRecord, ResolvedSubscribeOptions } from '../validation.js';
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
  /** The records of dead letters, ready to append (encoded outside any transaction). */
  deadLetterRecords(infos: readonly DeadLetterInfo[]): Promise<NormalisedRecord[]>;
  /** Appends records inside the caller's transaction; the returned function announces them once it committed. */
  appendInTx(records: readonly NormalisedRecord[]): () => void;
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
  private readonly host: SubscriptionHost;
  private readonly membership: GroupMembership;
  private readonly options: ResolvedSubscribeOptions;
  private readonly timings: SubscriptionTimings;
  private readonly dedupe: ProcessedEvents | null;
  private owned = new Map<string, TopicPartition>();
  private wanted = new Set<string>();
  /** Deliveries in flight, by tpKey: at most maxPartitionsInFlight. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Partitions whose last fetch was not full, and when: fetched again on a publish here or after a poll period. */
  private readonly emptySince = new Map<string, number>();
  /** A partition whose delivery failed waits until then; the others go on. */
  private readonly retryAt = new Map<string, number>();
  private readonly errors = new Map<string, string>();
  private loopError: string | null = null;
  private cursor = 0;
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private loop: Promise<void> = Promise.resolve();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeating: Promise<void> | null = null;
  private lastHeartbeatAt = Date.now();
  private unlisten: () => void = () => {};
  private dirty = true;
  /** Publishes heard so far: a delivery that drained its partition before the latest one must look again. */
  private wakes = 0;
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
    this.dedupe = dedupe;
    this.membership = new GroupMembership(host.store, this.group, this.topics, timings);
  }

  get memberId(): string {
    return this.membership.memberId;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** What health reports: the loop's error, else the first failing partition's. */
  get lastError(): string | null {
    return this.loopError ?? this.errors.values().next().value ?? null;
  }

  /** Joins the group and claims partitions before resolving, so a publish right after subscribe() is seen. */
  async start(): Promise<void> {
    await this.membership.join(this.options.fromBeginning);
    await this.rebalance();
    this.unlisten = onPublish(this.host.path, (topics) => {
      if (this.topics.some((t) => topics.has(t))) this.wake();
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.timings.heartbeatIntervalMs);
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

  /** A publish: every partition is worth a fetch again. */
  private wake(): void {
    this.dirty = true;
    this.wakes++;
    this.kick();
  }

  /** Something changed (a delivery ended): the loop looks again. */
  private kick(): void {
    for (const w of this.wakers) w();
  }

  /** Waits ms, or less when kicked or woken unless onlyClose; always ends early on close. */
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

  /** Refreshes the member row and leases; drops what was lost meanwhile. One at a time. */
  private heartbeat(): Promise<void> {
    if (this.closing || this.host.isClosed) return Promise.resolve();
    return (this.heartbeating ??= (async () => {
      try {
        const now = Date.now();
        const still = await this.membership.heartbeat(now);
        this.lastHeartbeatAt = now;
        for (const k of [...this.owned.keys()]) if (!still.has(k)) this.owned.delete(k); // lost while silent
        this.loopError = null;
      } catch (error) {
        this.loopError = `heartbeat failed: ${(error as Error).message}`;
      } finally {
        this.heartbeating = null;
      }
    })());
  }

  /** Takes this member's share of the partitions now; partitions in flight are kept until their delivery ends. */
  private async rebalance(): Promise<void> {
    const now = Date.now();
    this.nextRebalanceAt = now + this.timings.heartbeatIntervalMs;
    const { owned, wanted } = await this.membership.rebalance(now, new Set(this.inFlight.keys()));
    this.owned = owned;
    this.wanted = wanted;
    this.lastHeartbeatAt = now;
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      try {
        if (Date.now() >= this.nextRebalanceAt) await this.rebalance();
        this.loopError = null;
      } catch (error) {
        if (this.host.isClosed) break;
        this.loopError = error instanceof Error ? error.message : String(error);
        this.nextRebalanceAt = Date.now() + Math.min(1_000, this.timings.pollIntervalMs * 5);
      }
      if (this.isPaused)
        this.dirty = false; // resume() wakes the loop
      else if (!this.closing) this.schedule();
      await this.wait(Math.max(1, Math.min(this.timings.pollIntervalMs, this.nextRebalanceAt - Date.now())));
    }
    await Promise.allSettled([...this.inFlight.values()]); // in-flight deliveries finish and commit
  }

  /** Starts a delivery on each owned partition that may have work, round robin, up to the in-flight bound. */
  private schedule(): void {
    const now = Date.now();
    if (this.dirty) this.emptySince.clear();
    this.dirty = false;
    const keys = [...this.owned.keys()];
    const limit = this.options.maxPartitionsInFlight;
    for (let j = 0; j < keys.length && this.inFlight.size < limit; j++) {
      const k = keys[(this.cursor + j) % keys.length]!;
      if (this.inFlight.has(k) || !this.wanted.has(k) || (this.retryAt.get(k) ?? 0) > now) continue;
      const empty = this.emptySince.get(k);
      if (empty !== undefined && now - empty < this.timings.pollIntervalMs) continue;
      const tp = this.owned.get(k)!;
      const wakesBefore = this.wakes;
      const delivery = this.processPartition(tp.topic, tp.partition)
        .then(
          (full) => {
            // A fetch that was not full drained the partition: look again on a publish here (none came during the
            // delivery) or after a poll period.
            if (full || this.wakes !== wakesBefore) this.emptySince.delete(k);
            else this.emptySince.set(k, Date.now());
            this.errors.delete(k);
          },
          (error: unknown) => {
            if (this.host.isClosed) return;
            this.errors.set(k, error instanceof Error ? error.message : String(error));
            this.retryAt.set(k, Date.now() + Math.min(1_000, this.timings.pollIntervalMs * 5));
          },
        )
        .finally(() => {
          this.inFlight.delete(k);
          this.kick();
        });
      this.inFlight.set(k, delivery);
    }
    this.cursor = keys.length > 0 ? (this.cursor + 1) % keys.length : 0;
  }

  /** Before each record: stop when closing, paused or the partition is gone; a zombie checks its lease first. */
  private shouldStop(k: string): boolean | Promise<boolean> {
    if (this.closing || this.isPaused || !this.owned.has(k) || !this.wanted.has(k)) return true;
    if (Date.now() - this.lastHeartbeatAt <= this.timings.sessionTimeoutMs) return false;
    // More than a session since the last heartbeat (a synchronous handler kept the timer from running): the lease
    // may be someone else's now. The heartbeat renews what is still ours and drops the rest.
    return this.heartbeat().then(
      () => Date.now() - this.lastHeartbeatAt > this.timings.sessionTimeoutMs || !this.owned.has(k),
    );
  }

  /** Fetches one batch of a partition from the committed offset and delivers it. Resolves whether it was full. */
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
    const ctx: DeliveryContext = {
      options: this.options,
      dedupe: this.dedupe,
      observer: this.host.observer,
      begin: () => this.membership.begin(topic, partition, committed),
      commit: (progress) => this.commit(topic, partition, progress),
      shouldStop: () => this.shouldStop(k),
      sleep: (ms) => this.wait(ms, false),
    };
    await deliver(ctx, records);
    return rows.length === this.options.maxBatchSize;
  }

  /** One transaction: dead letters, processed ids, offset and delivery row, only while the lease is ours. */
  private async commit(topic: string, partition: number, p: Progress): Promise<boolean> {
    if (p.last === null && !p.final && p.deadLetters.length === 0) return true;
    if (this.host.isClosed) return false;
    const letters = p.deadLetters.length > 0 ? await this.host.deadLetterRecords(p.deadLetters) : [];
    let announce = () => {};
    const next = p.last === null ? null : Number(p.last.offset) + 1;
    const ok = await this.membership.commit(topic, partition, next, p.final, () => {
      if (letters.length > 0) announce = this.host.appendInTx(letters);
      if (this.dedupe && p.processed.length > 0) this.dedupe.markProcessed(this.group, p.processed);
    });
    if (!ok) {
      this.owned.delete(tpKey(topic, partition));
      return false;
    }
    announce();
    return true;
  }

  /**
   * Inside the caller's transaction (the embedded inbox): commits the offset past `record` when this member holds
   * its partition. False when it does not (the caller rolls back).
   */
  commitInTx(record: BusRecord): boolean {
    if (!this.owned.has(tpKey(record.topic, record.partition))) return false;
    if (!this.membership.holds(record.topic, record.partition)) return false;
    this.membership.writeOffset(record.topic, record.partition, Number(record.offset) + 1);
    return true;
  }

  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    for (const w of [...this.wakers, ...this.closeWaiters]) w();
    this.unlisten();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.loop; // in-flight deliveries finish and commit
    if (!this.host.isClosed) {
      try {
        await this.membership.leave();
      } catch {
        // The lease expires on its own.
      }
    }
    this.host.forget(this);
  }
}
