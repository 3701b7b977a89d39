import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyProvider } from '../src/index.js';
import { tempDir } from '@edgefl/testing';
import { keyProviderContract } from './key-provider.contract.js';

keyProviderContract('local keyring', async () => {
  const dir = await tempDir('edgefl-keys-contract-');
  const path = join(dir.path, 'keys', 'keyring.json');
  return {
    open: () => createKeyProvider({ kind: 'local', path }),
    async secrets() {
      const doc = JSON.parse(await readFile(path, 'utf8')) as {
        keys: Record<string, { versions: { secret: string }[] }>;
      };
      return Object.values(doc.keys).flatMap((k) => k.versions.map((v) => v.secret));
    },
    cleanup: dir.remove,
  };
});
