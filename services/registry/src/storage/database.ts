import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest, type DatabaseKind } from './migrations.js';
import type { RegistryDatabase } from './schema.js';
import { nodeSqliteDatabase } from './sqlite.js';

export interface OpenedDatabase {
  kind: DatabaseKind;
  db: Kysely<RegistryDatabase>;
  /** Cheap query proving the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string; schema?: string; maxConnections?: number };

const INT8_OID = 20;

/** Opens the metadata store (SQLite file or PostgreSQL) and migrates it to the latest schema. */
export async function openDatabase(target: DatabaseTarget): Promise<OpenedDatabase> {
  let db: Kysely<RegistryDatabase>;
  if (target.kind === 'sqlite') {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    db = new Kysely<RegistryDatabase>({
      dialect: new SqliteDialect({ database: nodeSqliteDatabase(target.path) }),
    });
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
    db = new Kysely<RegistryDatabase>({ dialect: new PostgresDialect({ pool }) });
  }
  try {
    await migrateToLatest(db as unknown as Kysely<unknown>, target.kind);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return {
    kind: target.kind,
    db,
    ping: async () => {
      await db.selectFrom('tenants').select('id').limit(1).execute();
    },
    close: () => db.destroy(),
  };
}
