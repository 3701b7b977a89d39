import { runComposeConfigSuite } from '@edgefl/testing';
import { registryConfig } from '../src/config.js';

runComposeConfigSuite('registry', registryConfig);
