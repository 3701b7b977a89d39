import { runServiceBasicsSuite } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

runServiceBasicsSuite('registry', bootstrap, ['bus', 'keys', 'store'], { openApiTitle: 'edgefl registry' });
