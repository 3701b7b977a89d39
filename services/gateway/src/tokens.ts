/** Injection tokens of the gateway. */
export const DEVICE_SENDER = Symbol.for('edgefl.gateway.device-sender');
export const GATEWAY_CONFIG = Symbol.for('edgefl.gateway.config');
/** This replica's id (uuid): the aedes broker id and the suffix of its per-replica consumer groups. */
export const INSTANCE_ID = Symbol.for('edgefl.gateway.instance-id');
/** The MqttEndpoint of the running mode (embedded broker or external bridge). */
export const MQTT_ENDPOINT = Symbol.for('edgefl.gateway.mqtt-endpoint');
