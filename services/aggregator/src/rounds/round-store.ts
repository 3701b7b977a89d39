import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import type { LedgerState } from '@edgefl/fl';
import type { RoundSettings } from './round-settings.js';
import type { SecAggState } from './secure-rounds.js';

/** OPEN → CLOSED → AGGREGATED → DONE, or OPEN → CANCELLED / FAILED (no result). */
export type RoundState = 'OPEN' | 'CLOSED' | 'AGGREGATED' | 'DONE' | 'CANCELLED' | 'FAILED';

export interface RoundRow {
  roundId: string;
  tenant: string;
  modelId: string;
  state: RoundState;
  settings: RoundSettings;
  /** Layer lengths of the base model, in spec order. */
  shape: number[];
  openedAt: number;
  openedEventId: string;
  openedPublished: boolean;
  quorumMetAt: number | null;
  closedAt: number | null;
  closeReason: 'QUORUM' | 'DEADLINE' | 'ABORTED' | null;
  closeDetail: string | null;
  closedEventId: string | null;
  closedPublished: boolean;
  resultEventId: string | null;
  resultPublished: boolean;
  /** ε of this round alone (0 without DP). */
  epsilon: number;
  /** ε of the tenant × model after this round. */
  epsilonTotal: number;
  sealKeyName: string;
  result: StoredResult | null;
}

export interface StoredResult {
  participants: string[];
  sha256: string;
  sizeBytes: number;
  /** Set when the weights went to an artifact file. */
  uri: string | null;
  metrics: Record<string, number>;
}

export type Verdict = 'accepted' | 'rejected';

export interface UpdateRow {
  seq: number;
  roundId: string;
  updateId: string;
  eventId: string;
  deviceId: string;
  verdict: Verdict;
  reason: string | null;
  detail: string | null;
  norm: number | null;
  numExamples: number;
  cosine: number | null;
  receivedAt: number;
}

const MIGRATION = `
CREATE TABLE IF NOT EXISTS rounds (
  round_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, model_id TEXT NOT NULL, state TEXT NOT NULL,
  settings TEXT NOT NULL, shape TEXT NOT NULL, base_weights BLOB NOT NULL, opened_at INTEGER NOT NULL,
  opened_event_id TEXT NOT NULL, opened_published INTEGER NOT NULL DEFAULT 0, quorum_met_at INTEGER,
  closed_at INTEGER, close_reason TEXT, close_detail TEXT, closed_event_id TEXT,
  closed_published INTEGER NOT NULL DEFAULT 0, result_event_id TEXT, result_published INTEGER NOT NULL DEFAULT 0,
  epsilon REAL NOT NULL DEFAULT 0, epsilon_total REAL NOT NULL DEFAULT 0, seal_key TEXT NOT NULL,
  result TEXT, result_weights BLOB
);
CREATE INDEX IF NOT EXISTS rounds_state ON rounds(state);
CREATE TABLE IF NOT EXISTS round_updates (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, round_id TEXT NOT NULL, update_id TEXT NOT NULL,
  event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT, detail TEXT,
  norm REAL, num_examples REAL NOT NULL, cosine REAL, received_at INTEGER NOT NULL, payload BLOB
);
CREATE INDEX IF NOT EXISTS round_updates_round ON round_updates(round_id, verdict);
CREATE INDEX IF NOT EXISTS round_updates_update ON round_updates(round_id, update_id);
CREATE INDEX IF NOT EXISTS round_updates_device ON round_updates(round_id, device_id, verdict);
CREATE UNIQUE INDEX IF NOT EXISTS round_updates_accepted ON round_updates(round_id, update_id) WHERE verdict = 'accepted';
CREATE TABLE IF NOT EXISTS device_keys (
  tenant TEXT NOT NULL, device_id TEXT NOT NULL, public_key TEXT NOT NULL, key_id TEXT NOT NULL,
  PRIMARY KEY (tenant, device_id)
);
CREATE TABLE IF NOT EXISTS secagg_rounds (round_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dp_ledger (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
`;

type Row = Record<string, SQLInputValue>;

/** Every column but the blobs (base and result weights, payloads): rows are read often, blobs only when needed. */
const ROUND_COLUMNS = `round_id, tenant, model_id, state, settings, shape, opened_at, opened_event_id, opened_published,
  quorum_met_at, closed_at, close_reason, close_detail, closed_event_id, closed_published, result_event_id,
  result_published, epsilon, epsilon_total, seal_key, result`;
const UPDATE_COLUMNS = `seq, round_id, update_id, event_id, device_id, verdict, reason, detail, norm, num_examples,
  cosine, received_at`;

/**
 * The aggregator's durable state in SQLite (node:sqlite, WAL): rounds and their publish flags (an outbox: each
 * event's id is stored before it is published, so a restart republishes the same event), every update received
 * with its verdict (accepted updates keep their sealed payload, never the plaintext), device keys from the
 * registry's lifecycle events, and the privacy ledger. Every change that must count once is one transaction.
 */
export class RoundStore {
  private readonly db: DatabaseSync;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(MIGRATION);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** Runs `work` in one IMMEDIATE transaction (inside an open one, as part of it). */
  transaction<T>(work: () => T): T {
    if (this.db.isTransaction) return work();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = work();
      this.db.exec('COMMIT');
      return out;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  insertRound(r: RoundRow, baseWeights: Uint8Array): void {
    this.db
      .prepare(
        `INSERT INTO rounds (round_id, tenant, model_id, state, settings, shape, base_weights, opened_at,
          opened_event_id, seal_key, epsilon, epsilon_total) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
      )
      .run(
        r.roundId,
        r.tenant,
        r.modelId,
        r.state,
        JSON.stringify(r.settings),
        JSON.stringify(r.shape),
        baseWeights,
        r.openedAt,
        r.openedEventId,
        r.sealKeyName,
        r.epsilon,
        r.epsilonTotal,
      );
  }

  round(roundId: string): RoundRow | null {
    const row = this.db.prepare(`SELECT ${ROUND_COLUMNS} FROM rounds WHERE round_id = ?`).get(roundId) as
      Row | undefined;
    return row ? toRound(row) : null;
  }

  rounds(filter: { tenant?: string; modelId?: string; state?: RoundState; limit: number }): RoundRow[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (filter.tenant) {
      where.push('tenant = ?');
      args.push(filter.tenant);
    }
    if (filter.modelId) {
      where.push('model_id = ?');
      args.push(filter.modelId);
    }
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    const sql = `SELECT ${ROUND_COLUMNS} FROM rounds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_at DESC, round_id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit) as Row[]).map(toRound);
  }

  /** Rounds with work left (open, or closed and not yet published). */
  unfinished(): RoundRow[] {
    return (
      this.db
        .prepare(
          `SELECT ${ROUND_COLUMNS} FROM rounds WHERE state IN ('OPEN','CLOSED','AGGREGATED') OR closed_published = 0 OR opened_published = 0 ORDER BY opened_at`,
        )
        .all() as Row[]
    ).map(toRound);
  }

  baseWeights(roundId: string): Uint8Array {
    const row = this.db.prepare('SELECT base_weights FROM rounds WHERE round_id = ?').get(roundId) as Row;
    return row['base_weights'] as Uint8Array;
  }

  resultWeights(roundId: string): Uint8Array | null {
    const row = this.db.prepare('SELECT result_weights FROM rounds WHERE round_id = ?').get(roundId) as
      Row | undefined;
    return (row?.['result_weights'] as Uint8Array | null | undefined) ?? null;
  }

  markPublished(roundId: string, which: 'opened' | 'closed' | 'result'): void {
    this.db.prepare(`UPDATE rounds SET ${which}_published = 1 WHERE round_id = ?`).run(roundId);
    if (which === 'result')
      this.db
        .prepare(`UPDATE rounds SET state = 'DONE' WHERE round_id = ? AND state = 'AGGREGATED'`)
        .run(roundId);
  }

  /** The durable state of a secure-aggregation round (plan, phase, dropouts, survivors, refusals). */
  secAggState(roundId: string): SecAggState | null {
    const row = this.db.prepare('SELECT state FROM secagg_rounds WHERE round_id = ?').get(roundId) as
      Row | undefined;
    return row ? (JSON.parse(String(row['state'])) as SecAggState) : null;
  }

  saveSecAggState(roundId: string, state: SecAggState): void {
    this.db
      .prepare(
        'INSERT INTO secagg_rounds (round_id, state) VALUES (?, ?) ON CONFLICT (round_id) DO UPDATE SET state = excluded.state',
      )
      .run(roundId, JSON.stringify(state));
  }

  setQuorumMet(roundId: string, at: number): void {
    this.db
      .prepare('UPDATE rounds SET quorum_met_at = ? WHERE round_id = ? AND quorum_met_at IS NULL')
      .run(at, roundId);
  }

  /** OPEN → CLOSED / CANCELLED / FAILED, once: false when the round was no longer open. */
  markClosed(
    roundId: string,
    to: 'CLOSED' | 'CANCELLED' | 'FAILED',
    reason: 'QUORUM' | 'DEADLINE' | 'ABORTED',
    detail: string | null,
    eventId: string,
    at: number,
  ): boolean {
    const res = this.db
      .prepare(
        `UPDATE rounds SET state = ?, close_reason = ?, close_detail = ?, closed_event_id = ?, closed_at = ?
         WHERE round_id = ? AND state = 'OPEN'`,
      )
      .run(to, reason, detail, eventId, at, roundId);
    return res.changes === 1;
  }

  /** CLOSED → AGGREGATED with the result; the per-update cosines found by the aggregation are stored too. */
  saveResult(
    roundId: string,
    result: StoredResult,
    weights: Uint8Array,
    eventId: string,
    cosines: Map<number, number>,
  ): void {
    this.transaction(() => {
      const res = this.db
        .prepare(
          `UPDATE rounds SET state = 'AGGREGATED', result = ?, result_weights = ?, result_event_id = ?
           WHERE round_id = ? AND state = 'CLOSED'`,
        )
        .run(JSON.stringify(result), weights, eventId, roundId);
      if (res.changes !== 1) return;
      const set = this.db.prepare('UPDATE round_updates SET cosine = ? WHERE seq = ?');
      for (const [seq, c] of cosines) set.run(Number.isFinite(c) ? c : null, seq);
    });
  }

  failAggregation(roundId: string, detail: string): void {
    this.db
      .prepare(`UPDATE rounds SET state = 'FAILED', close_detail = ? WHERE round_id = ? AND state = 'CLOSED'`)
      .run(detail, roundId);
  }

  updateByEventId(eventId: string): UpdateRow | null {
    const row = this.db
      .prepare(`SELECT ${UPDATE_COLUMNS} FROM round_updates WHERE event_id = ?`)
      .get(eventId) as Row | undefined;
    return row ? toUpdate(row) : null;
  }

  /** Whether an update id (any verdict) or the device already has an accepted update in the round. */
  seen(roundId: string, updateId: string, deviceId: string): { updateId: boolean; deviceAccepted: boolean } {
    const u = this.db
      .prepare('SELECT 1 FROM round_updates WHERE round_id = ? AND update_id = ? LIMIT 1')
      .get(roundId, updateId);
    const d = this.db
      .prepare(
        `SELECT 1 FROM round_updates WHERE round_id = ? AND device_id = ? AND verdict = 'accepted' LIMIT 1`,
      )
      .get(roundId, deviceId);
    return { updateId: u !== undefined, deviceAccepted: d !== undefined };
  }

  insertUpdate(u: Omit<UpdateRow, 'seq' | 'cosine'>, payload: Uint8Array | null): void {
    this.db
      .prepare(
        `INSERT INTO round_updates (round_id, update_id, event_id, device_id, verdict, reason, detail, norm,
          num_examples, received_at, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
      )
      .run(
        u.roundId,
        u.updateId,
        u.eventId,
        u.deviceId,
        u.verdict,
        u.reason,
        u.detail,
        u.norm,
        u.numExamples,
        u.receivedAt,
        payload,
      );
  }

  counts(roundId: string): { received: number; accepted: number; rejected: number } {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS received, COALESCE(SUM(verdict = 'accepted'), 0) AS accepted FROM round_updates WHERE round_id = ?`,
      )
      .get(roundId) as Row;
    const received = Number(row['received']);
    const accepted = Number(row['accepted']);
    return { received, accepted, rejected: received - accepted };
  }

  updates(roundId: string): UpdateRow[] {
    return (
      this.db
        .prepare(`SELECT ${UPDATE_COLUMNS} FROM round_updates WHERE round_id = ? ORDER BY seq`)
        .all(roundId) as Row[]
    ).map(toUpdate);
  }

  /** The accepted updates with their sealed payloads, in acceptance order (one row in memory at a time). */
  *acceptedPayloads(roundId: string): Generator<{ row: UpdateRow; payload: Uint8Array }> {
    const it = this.db
      .prepare(
        `SELECT ${UPDATE_COLUMNS}, payload FROM round_updates WHERE round_id = ? AND verdict = 'accepted' ORDER BY seq`,
      )
      .iterate(roundId) as Iterable<Row>;
    for (const row of it) yield { row: toUpdate(row), payload: row['payload'] as Uint8Array };
  }

  /** Drops the payloads of a finished round (the sealed bytes are no use once its key is deleted). */
  dropPayloads(roundId: string): void {
    this.db.prepare('UPDATE round_updates SET payload = NULL WHERE round_id = ?').run(roundId);
  }

  deviceKey(tenant: string, deviceId: string): { publicKey: string; keyId: string } | null {
    const row = this.db
      .prepare('SELECT public_key, key_id FROM device_keys WHERE tenant = ? AND device_id = ?')
      .get(tenant, deviceId) as Row | undefined;
    return row ? { publicKey: String(row['public_key']), keyId: String(row['key_id']) } : null;
  }

  setDeviceKey(tenant: string, deviceId: string, key: { publicKey: string; keyId: string } | null): void {
    if (key === null)
      this.db.prepare('DELETE FROM device_keys WHERE tenant = ? AND device_id = ?').run(tenant, deviceId);
    else
      this.db
        .prepare(
          `INSERT INTO device_keys (tenant, device_id, public_key, key_id) VALUES (?,?,?,?)
           ON CONFLICT (tenant, device_id) DO UPDATE SET public_key = excluded.public_key, key_id = excluded.key_id`,
        )
        .run(tenant, deviceId, key.publicKey, key.keyId);
  }

  ledger(): LedgerState | undefined {
    const row = this.db.prepare('SELECT state FROM dp_ledger WHERE id = 1').get() as Row | undefined;
    return row ? (JSON.parse(String(row['state'])) as LedgerState) : undefined;
  }

  saveLedger(state: LedgerState): void {
    this.db
      .prepare(
        'INSERT INTO dp_ledger (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state',
      )
      .run(JSON.stringify(state));
  }
}

const num = (v: SQLInputValue | undefined) => (v === null || v === undefined ? null : Number(v));

function toRound(r: Row): RoundRow {
  return {
    roundId: String(r['round_id']),
    tenant: String(r['tenant']),
    modelId: String(r['model_id']),
    state: String(r['state']) as RoundState,
    settings: JSON.parse(String(r['settings'])) as RoundSettings,
    shape: JSON.parse(String(r['shape'])) as number[],
    openedAt: Number(r['opened_at']),
    openedEventId: String(r['opened_event_id']),
    openedPublished: Number(r['opened_published']) === 1,
    quorumMetAt: num(r['quorum_met_at']),
    closedAt: num(r['closed_at']),
    closeReason: (r['close_reason'] as RoundRow['closeReason']) ?? null,
    closeDetail: (r['close_detail'] as string | null) ?? null,
    closedEventId: (r['closed_event_id'] as string | null) ?? null,
    closedPublished: Number(r['closed_published']) === 1,
    resultEventId: (r['result_event_id'] as string | null) ?? null,
    resultPublished: Number(r['result_published']) === 1,
    epsilon: Number(r['epsilon']),
    epsilonTotal: Number(r['epsilon_total']),
    sealKeyName: String(r['seal_key']),
    result: r['result'] ? (JSON.parse(String(r['result'])) as StoredResult) : null,
  };
}

function toUpdate(r: Row): UpdateRow {
  return {
    seq: Number(r['seq']),
    roundId: String(r['round_id']),
    updateId: String(r['update_id']),
    eventId: String(r['event_id']),
    deviceId: String(r['device_id']),
    verdict: String(r['verdict']) as Verdict,
    reason: (r['reason'] as string | null) ?? null,
    detail: (r['detail'] as string | null) ?? null,
    norm: num(r['norm']),
    numExamples: Number(r['num_examples']),
    cosine: num(r['cosine']),
    receivedAt: Number(r['received_at']),
  };
}
