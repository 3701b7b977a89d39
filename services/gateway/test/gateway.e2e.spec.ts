import { runServiceBasicsSuite, type ServiceBootstrap } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

// 1883 is taken on most machines (a local Mosquitto): the basics run on a free MQTT port
const onFreePorts: ServiceBootstrap = (options) =>
  bootstrap({ ...options, env: { ...options.env, GATEWAY_MQTT_PORT: '0' } });

runServiceBasicsSuite('gateway', onFreePorts, ['bus', 'mqtt', 'device-lifecycle', 'releases']);
