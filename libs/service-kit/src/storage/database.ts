import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import pg from 'pg';
import { nodeSqliteDatabase } from './sqlite.js';

export type DatabaseKind = 'sqlite' | 'postgres';

/** Where a service's metadata store lives: a SQLite file (embedded mode) or PostgreSQL (`DATABASE_URL`). */
export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string; schema?: string; maxConnections?: number };

export interface OpenedDatabase<DB> {
  kind: DatabaseKind;
  db: Kysely<DB>;
  /** Cheap query proving the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Names the store in errors (`<name> store migration … failed`). */
  name: string;
  /** One migration list for both engines (Kysely's schema builder writes each engine's DDL). */
  migrations: (kind: DatabaseKind) => Record<string, Migration>;
  /** A table every migrated store has: `ping()` reads one row of it. */
  pingTable: string;
}

const INT8_OID = 20;

/**
 * Opens a service's metadata store (SQLite through node:sqlite, or a PostgreSQL pool) behind one Kysely instance
 * and migrates it to the latest schema: the plumbing every service store shares (the registry's, the
 * telemetry's), so only the tables differ.
 */
export async function openDatabase<DB>(
  target: DatabaseTarget,
  options: OpenDatabaseOptions,
): Promise<OpenedDatabase<DB>> {
  let db: Kysely<DB>;
  if (target.kind === 'sqlite') {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    db = new Kysely<DB>({ dialect: new SqliteDialect({ database: nodeSqliteDatabase(target.path) }) });
  } else {
    const pool = new pg.Pool({
      connectionString: target.url,
      max: target.maxConnections ?? 10,
      // bigint columns hold epoch milliseconds and sizes, all far below 2^53: read them as numbers
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
      },
      ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}),
    });
    // an idle client losing its connection must not crash the process; the next query reports the failure
    pool.on('error', () => undefined);
    db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  }
  try {
    await migrateToLatest(db as unknown as Kysely<unknown>, target.kind, options);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const untyped = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
  return {
    kind: target.kind,
    db,
    ping: async () => {
      await untyped.selectFrom(options.pingTable).selectAll().limit(1).execute();
    },
    close: () => db.destroy(),
  };
}

class InCodeMigrations implements MigrationProvider {
  constructor(private readonly list: Record<string, Migration>) {}
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(this.list);
  }
}

/** Brings the schema up to date; throws with the failing migration's name on error. Returns the names applied. */
export async function migrateToLatest(
  db: Kysely<unknown>,
  kind: DatabaseKind,
  options: Pick<OpenDatabaseOptions, 'name' | 'migrations'>,
): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new InCodeMigrations(options.migrations(kind)) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed) {
    throw new Error(
      `${options.name} store migration ${failed?.migrationName ?? ''} failed: ${(error as Error | undefined)?.message ?? 'unknown error'}`,
      { cause: error },
    );
  }
  return (results ?? []).map((r) => r.migrationName);
}
