/* global setInterval, clearInterval */
// A device in a dozen lines: provisions its identity, installs what the registry releases for it, serves
// predictions (escalating low-confidence ones through the gateway), sends heartbeats and takes part in rounds.
//   REGISTRY=http://stack:7104 MQTT=mqtt://stack:1883 TENANT=acme DEVICE=pos-0042 node examples/device.mjs
import { EdgeDevice } from '@edgefl/device-sdk';

const env = (name, fallback) => process.env[name] ?? fallback;
const device = new EdgeDevice({
  registryUrl: env('REGISTRY', 'http://127.0.0.1:7104'),
  mqttUrl: env('MQTT', 'mqtt://127.0.0.1:1883'),
  tenant: env('TENANT', 'acme'),
  deviceId: env('DEVICE', 'pos-0042'),
  keyFile: env('KEY_FILE', './device-data/device.pem'),
  dataDir: env('DATA_DIR', './device-data'),
  adminToken: process.env.REGISTRY_ADMIN_TOKEN, // only to register a device the registry does not know yet
  log: (line) => console.error(line),
});
await device.start();
const features = device.runner.current?.spec.inputs ?? 30;
const timer = setInterval(async () => {
  const row = Float32Array.from({ length: features }, () => Math.random() * 2 - 1);
  const p = await device.predict(row).catch((e) => ({ error: e.message }));
  console.log(JSON.stringify(p, (k, v) => (v instanceof Float32Array ? [...v] : v)));
}, 1000);
process.once('SIGINT', async () => {
  clearInterval(timer);
  await device.stop();
});
