import { runServiceBasicsSuite } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

runServiceBasicsSuite('aggregator', bootstrap, ['bus', 'keys'], { openApiTitle: 'edgefl aggregator' });
