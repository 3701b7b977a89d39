// @edgefl/device-sdk — the edge runtime: OTA client, local inference with cloud escalation, on-device training, the
// federated client, the offline buffer and its sync, heartbeats. Plain TypeScript on Node 24: no NestJS, Kafka or
// Vault (Nx tag runtime:edge); talks to the gateway over MQTT and to the registry over HTTP.
export * from './errors.js';
export * from './device.js';
export * from './identity.js';
export * from './registry-client.js';
export * from './dataset.js';
export * from './heartbeat.js';
export * from './feature-summary.js';
export * from './ota/model-store.js';
export * from './ota/trust.js';
export * from './ota/download.js';
export * from './ota/validate.js';
export * from './ota/ota-client.js';
export * from './inference/model-runner.js';
export * from './inference/tiered.js';
export * from './inference/escalation.js';
export * from './training/mlp.js';
export * from './training/trainer.js';
export * from './fl/eligibility.js';
export * from './fl/federated-client.js';
export * from './fl/secagg-participant.js';
export * from './buffer/outbox.js';
export * from './buffer/sync.js';
export * from './transport/mqtt-link.js';
export * from './transport/secagg-channel.js';
