import { join } from 'node:path';
import { tempDir } from '@edgefl/testing';
import { openTelemetryDatabase } from './database.js';
import { runTelemetryStoreSuite } from './store.contract.js';

runTelemetryStoreSuite('sqlite', async () => {
  const dir = await tempDir('edgefl-telemetry-store-');
  const path = join(dir.path, 'telemetry.sqlite');
  return {
    database: await openTelemetryDatabase({ kind: 'sqlite', path }),
    reopen: () => openTelemetryDatabase({ kind: 'sqlite', path }),
    cleanup: dir.remove,
  };
});
