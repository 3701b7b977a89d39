import { join } from 'node:path';
import { tempDir } from '@edgefl/testing';
import { EmbeddedBus } from './embedded-bus.js';
import { runBusContractSuite } from '../contract/bus-contract-suite.js';

const timings = { heartbeatIntervalMs: 200, sessionTimeoutMs: 1_500, pollIntervalMs: 25 };

runBusContractSuite('embedded', async () => {
  const dir = await tempDir('edgefl-bus-contract-');
  const path = join(dir.path, 'bus.sqlite');
  return {
    open: async () => new EmbeddedBus({ path, ...timings }),
    childConfig: () => ({ adapter: 'embedded', path, ...timings }),
    cleanup: () => dir.remove(),
  };
});
