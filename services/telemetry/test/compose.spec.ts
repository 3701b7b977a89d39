import { runComposeConfigSuite } from '@edgefl/testing';
import { telemetryConfig } from '../src/config.js';

runComposeConfigSuite('telemetry', telemetryConfig);
