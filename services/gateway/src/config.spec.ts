import { describe, expect, it } from 'vitest';
import { gatewayConfig } from './config.js';

describe('gateway config', () => {
  it('defaults to the embedded broker on 1883 with the registry JWKS on localhost', () => {
    const own = gatewayConfig.load({}).own;
    expect(own).toMatchObject({
      mode: 'embedded',
      mqtt: { port: 1883, wsPort: null, tls: null },
      redisUrl: null,
    });
    expect(own.auth.jwksUrl).toBe('http://127.0.0.1:7104/v1/device-tokens/jwks.json');
  });

  it('accepts port 0 (a free port) and refuses inconsistent settings with one line naming them', () => {
    expect(gatewayConfig.load({ GATEWAY_MQTT_PORT: '0' }).own.mqtt.port).toBe(0);
    expect(() => gatewayConfig.load({ GATEWAY_MQTTS_PORT: '8883' })).toThrow(
      /GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set/,
    );
    expect(() => gatewayConfig.load({ GATEWAY_MQTT_MODE: 'external' })).toThrow(
      /GATEWAY_EXTERNAL_URL must be set/,
    );
    expect(() => gatewayConfig.load({ GATEWAY_MQTT_PORT: '70000' })).toThrow(/GATEWAY_MQTT_PORT/);
    expect(() => gatewayConfig.load({ GATEWAY_REDIS_URL: 'http://x' })).toThrow(
      /GATEWAY_REDIS_URL must be a redis/,
    );
  });

  it('never echoes the secret variables', () => {
    let message = '';
    try {
      gatewayConfig.load({ GATEWAY_REDIS_URL: 'nope-secret-value' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('GATEWAY_REDIS_URL');
    expect(message).not.toContain('nope-secret-value');
  });
});
