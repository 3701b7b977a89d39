// The embedded schema registry: one table in a SQLite file (the embedded event bus keeps its log in the same file).
import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { canRead, parseSchema } from '../avro.js';
import { ContractError } from '../errors.js';
import type { RegisteredSchema, SchemaRegistry } from './port.js';

export interface EmbeddedSchemaRegistryOptions {
  /** How long a writer waits for another process holding the file's write lock (default 5000 ms). */
  busyTimeoutMs?: number;
}

interface Row {
  schema_id: number;
  subject: string;
  version: number;
  schema: string;
}

const MAX_SUBJECT_LENGTH = 255;

/**
 * SchemaRegistry on node:sqlite. Several processes may share the file (WAL, busy timeout, writes in IMMEDIATE
 * transactions); ids are stable across restarts because they live in the file.
 */
export class EmbeddedSchemaRegistry implements SchemaRegistry {
  readonly #db: DatabaseSync;
  #closed = false;

  constructor(path: string, options: EmbeddedSchemaRegistryOptions = {}) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS schema_registry (
        subject     TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        schema_id   INTEGER NOT NULL,
        schema      TEXT    NOT NULL,
        schema_hash TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (subject, version),
        UNIQUE (subject, schema_hash)
      );
      CREATE INDEX IF NOT EXISTS schema_registry_by_id ON schema_registry (schema_id);
      CREATE INDEX IF NOT EXISTS schema_registry_by_hash ON schema_registry (schema_hash);
    `);
  }

  async register(subject: string, schemaJson: string): Promise<number> {
    this.#open();
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
      throw new ContractError(
        'INVALID_VALUE',
        `subject must be a string of 1-${MAX_SUBJECT_LENGTH} characters`,
      );
    }
    if (typeof schemaJson !== 'string') throw new ContractError('MALFORMED', 'schema must be JSON text');
    const reader = parseSchema(schemaJson); // MALFORMED when invalid
    // Identity is the schema as written (defaults and docs included), not its canonical form: two schemas that
    // differ only in a default are different schemas to a reader.
    const text = JSON.stringify(JSON.parse(schemaJson));
    const hash = createHash('sha256').update(text).digest('hex');

    const db = this.#db;
    db.exec('BEGIN IMMEDIATE');
    try {
      const existing = db
        .prepare('SELECT schema_id FROM schema_registry WHERE subject = ? AND schema_hash = ?')
        .get(subject, hash) as { schema_id: number } | undefined;
      if (existing) {
        db.exec('COMMIT');
        return existing.schema_id;
      }
      const latest = db
        .prepare(
          'SELECT schema, version FROM schema_registry WHERE subject = ? ORDER BY version DESC LIMIT 1',
        )
        .get(subject) as { schema: string; version: number } | undefined;
      if (latest) {
        const verdict = canRead(reader, parseSchema(latest.schema));
        if (!verdict.ok) {
          throw new ContractError(
            'INCOMPATIBLE_SCHEMA',
            `schema is not BACKWARD compatible with version ${latest.version} of subject ${subject}: ${verdict.why}`,
          );
        }
      }
      const sameSchema = db
        .prepare('SELECT schema_id FROM schema_registry WHERE schema_hash = ? LIMIT 1')
        .get(hash) as { schema_id: number } | undefined;
      const id =
        sameSchema?.schema_id ??
        (db.prepare('SELECT COALESCE(MAX(schema_id), 0) AS id FROM schema_registry').get() as { id: number })
          .id + 1;
      db.prepare(
        'INSERT INTO schema_registry (subject, version, schema_id, schema, schema_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(subject, (latest?.version ?? 0) + 1, id, text, hash, Date.now());
      db.exec('COMMIT');
      return id;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  async getById(id: number): Promise<string> {
    this.#open();
    const row = Number.isSafeInteger(id)
      ? (this.#db.prepare('SELECT schema FROM schema_registry WHERE schema_id = ? LIMIT 1').get(id) as
          { schema: string } | undefined)
      : undefined;
    if (!row)
      throw new ContractError('UNKNOWN_SCHEMA_ID', `no schema with id ${String(id)}`, { schemaId: id });
    return row.schema;
  }

  async getLatest(subject: string): Promise<RegisteredSchema | undefined> {
    this.#open();
    const row = this.#db
      .prepare(
        'SELECT schema_id, subject, version, schema FROM schema_registry WHERE subject = ? ORDER BY version DESC LIMIT 1',
      )
      .get(subject) as Row | undefined;
    return row
      ? { id: row.schema_id, subject: row.subject, version: row.version, schema: row.schema }
      : undefined;
  }

  /** Every version of a subject, oldest first. */
  async versions(subject: string): Promise<RegisteredSchema[]> {
    this.#open();
    const rows = this.#db
      .prepare(
        'SELECT schema_id, subject, version, schema FROM schema_registry WHERE subject = ? ORDER BY version',
      )
      .all(subject) as unknown as Row[];
    return rows.map((row) => ({
      id: row.schema_id,
      subject: row.subject,
      version: row.version,
      schema: row.schema,
    }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #open(): void {
    if (this.#closed) throw new Error('EmbeddedSchemaRegistry is closed');
  }
}
