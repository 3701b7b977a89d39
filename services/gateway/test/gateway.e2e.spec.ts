import { runServiceBasicsSuite } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

runServiceBasicsSuite('gateway', bootstrap, ['bus', 'keys']);
