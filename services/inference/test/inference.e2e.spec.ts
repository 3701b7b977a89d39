import { runServiceBasicsSuite } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

runServiceBasicsSuite('inference', bootstrap, ['bus'], { openApiTitle: 'edgefl inference' });
