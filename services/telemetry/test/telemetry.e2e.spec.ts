import { runServiceBasicsSuite } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

runServiceBasicsSuite('telemetry', bootstrap, ['bus', 'store'], { openApiTitle: 'edgefl telemetry' });
