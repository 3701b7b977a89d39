import { runComposeConfigSuite } from '@edgefl/testing';
import { inferenceConfig } from '../src/config.js';

runComposeConfigSuite('inference', inferenceConfig);
