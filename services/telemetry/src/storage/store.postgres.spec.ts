import { randomBytes } from 'node:crypto';
import { announceSkip, postgresFromEnv } from '@edgefl/testing';
import pg from 'pg';
import { openTelemetryDatabase } from './database.js';
import { runTelemetryStoreSuite } from './store.contract.js';

const target = await postgresFromEnv();
if (!target.available) announceSkip('postgres telemetry store suite', target.why);

runTelemetryStoreSuite(
  'postgres',
  async () => {
    if (!target.available) throw new Error('unreachable');
    const url = target.target.url;
    // a fresh schema per test, dropped afterwards
    const schema = `telemetry_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    return {
      database: await openTelemetryDatabase({ kind: 'postgres', url, schema }),
      reopen: () => openTelemetryDatabase({ kind: 'postgres', url, schema }),
      cleanup: async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`);
        await c.end();
      },
    };
  },
  { skip: !target.available },
);
