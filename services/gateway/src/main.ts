import {
  exitOnBootError,
  isEntryModule,
  serviceEntry,
  type BootstrapOptions,
  type RunningService,
} from '@edgefl/service-kit';
import { GatewayAppModule } from './app.module.js';
import type { MqttEndpoint, MqttUrls } from './broker/listeners.js';
import { gatewayConfig } from './config.js';
import { MQTT_ENDPOINT } from './tokens.js';

const start = serviceEntry({ definition: gatewayConfig, module: GatewayAppModule.forRoot });

export interface RunningGateway extends RunningService {
  /** Where devices connect: mqtt://host:port (the URL `npx edgefl up` prints). */
  mqttUrl: string;
  mqttUrls: MqttUrls;
}

/** Starts the gateway; `node services/gateway/dist/main.js` runs it on its own. */
export async function bootstrap(options?: BootstrapOptions): Promise<RunningGateway> {
  const running = await start(options);
  const urls = running.app.get<symbol, MqttEndpoint>(MQTT_ENDPOINT).urls;
  return { ...running, mqttUrl: urls.mqtt, mqttUrls: urls };
}

export { gatewayConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('gateway'));
