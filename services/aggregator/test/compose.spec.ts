import { runComposeConfigSuite } from '@edgefl/testing';
import { aggregatorConfig } from '../src/config.js';

runComposeConfigSuite('aggregator', aggregatorConfig);
