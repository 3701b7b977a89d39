import { runComposeConfigSuite } from '@edgefl/testing';
import { gatewayConfig } from '../src/config.js';

runComposeConfigSuite('gateway', gatewayConfig);
