import { join } from 'node:path';
import { tempDir } from '@edgefl/testing';
import { openDatabase } from './database.js';
import { runRegistryStoreSuite } from './store.contract.js';

runRegistryStoreSuite('sqlite', async () => {
  const dir = await tempDir('edgefl-registry-store-');
  const path = join(dir.path, 'registry.sqlite');
  return {
    database: await openDatabase({ kind: 'sqlite', path }),
    reopen: () => openDatabase({ kind: 'sqlite', path }),
    cleanup: dir.remove,
  };
});
