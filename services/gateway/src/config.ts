import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, defineServiceConfig, positiveInt, secret } from '@edgefl/service-kit';
import { z } from 'zod';

/** A TCP port where 0 means "let the OS pick a free one" (tests, several gateways on one machine). */
const listenPort = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);
const optionalListenPort = z.coerce.number().int().min(0).max(65_535).optional();
const filePath = z.string().min(1).optional();
const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** The gateway's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const gatewayConfig = defineServiceConfig({
  service: 'gateway',
  defaultPort: 7101,
  ownShape: {
    /** `embedded`: aedes inside the gateway; `external`: bridge an external broker (Mosquitto, EMQX) over mqtt.js. */
    GATEWAY_MQTT_MODE: z.enum(['embedded', 'external']).default('embedded'),
    /** Interface the MQTT listeners bind (default: HOST). */
    GATEWAY_MQTT_HOST: z.string().min(1).optional(),
    /** Plain MQTT over TCP (0 = a free port). */
    GATEWAY_MQTT_PORT: listenPort(1883),
    /** MQTT over TLS (0 = a free port; unset = no TLS listener). Needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY. */
    GATEWAY_MQTTS_PORT: optionalListenPort,
    /** MQTT over WebSocket (0 = a free port; unset = none). */
    GATEWAY_MQTT_WS_PORT: optionalListenPort,
    GATEWAY_TLS_CERT: filePath,
    GATEWAY_TLS_KEY: filePath,
    /** CA bundle client certificates must chain to; set to accept device certificates (mutual TLS). */
    GATEWAY_TLS_CLIENT_CA: filePath,
    /** `optional`: a device may authenticate by certificate or token; `required`: TLS clients must show one. */
    GATEWAY_TLS_CLIENT_CERT: z.enum(['optional', 'required']).default('optional'),
    /** Where the registry publishes its device-token keys (JWKS over HTTP). */
    GATEWAY_JWKS_URL: z.url().default('http://127.0.0.1:7104/v1/device-tokens/jwks.json'),
    GATEWAY_TOKEN_ISSUER: z.string().min(1).default('edgefl-registry'),
    GATEWAY_TOKEN_AUDIENCE: z.string().min(1).default('edgefl-mqtt'),
    /** How long a fetched JWKS is used before it is fetched again (an unknown kid refetches at once). */
    GATEWAY_JWKS_CACHE_MS: positiveInt(10 * 60_000),
    /** Clock skew tolerated on exp/nbf/iat. */
    GATEWAY_TOKEN_CLOCK_TOLERANCE_S: nonNegativeInt(30),
    /** aedes drainTimeout: a subscriber whose socket does not drain in this time is dropped, not waited for. */
    GATEWAY_DRAIN_TIMEOUT_MS: positiveInt(5_000),
    /** Largest accepted PUBLISH payload; larger ones are refused (reply/error topic) and counted. */
    GATEWAY_MAX_PAYLOAD_BYTES: positiveInt(1024 * 1024),
    /** Per-device token bucket: sustained messages per second, and the burst. */
    GATEWAY_RATE_LIMIT_PER_S: positiveInt(100),
    GATEWAY_RATE_LIMIT_BURST: positiveInt(200),
    /** Refusals (ACL, rate, bad payload) within GATEWAY_ABUSE_WINDOW_MS after which the connection is closed. */
    GATEWAY_ABUSE_LIMIT: positiveInt(20),
    GATEWAY_ABUSE_WINDOW_MS: positiveInt(60_000),
    /** How long one QoS 1 publish may wait for the bus before the device is disconnected (it will resend). */
    GATEWAY_BUS_TIMEOUT_MS: positiveInt(10_000),
    /** How often the connected devices are re-checked for expired tokens. */
    GATEWAY_SESSION_CHECK_MS: positiveInt(1_000),
    /** Redis for N aedes replicas sharing sessions, retained messages and subscriptions (embedded mode). */
    GATEWAY_REDIS_URL: secret(
      z
        .string()
        .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
        .optional(),
    ),
    /** External mode: the broker to bridge, and the gateway's own credentials there. */
    GATEWAY_EXTERNAL_URL: z
      .string()
      .regex(/^(mqtts?|wss?|tcp|tls):\/\//, 'an mqtt://, mqtts://, ws:// or wss:// URL')
      .optional(),
    GATEWAY_EXTERNAL_USERNAME: z.string().min(1).default('edgefl-gateway'),
    GATEWAY_EXTERNAL_PASSWORD: secret(z.string().min(1).optional()),
    /** This replica's MQTT client id at the external broker: stable (its QoS 1 session), unique per replica. */
    GATEWAY_EXTERNAL_CLIENT_ID: z.string().min(1).max(128).optional(),
    /** MQTT 5 shared-subscription group the replicas split the up traffic in (`$share/<group>/…`). */
    GATEWAY_SHARE_GROUP: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, '1-64 of [A-Za-z0-9_-]')
      .default('edgefl'),
  },
  mapOwn: (env, base) => {
    const path = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(p));
    const tls =
      env.GATEWAY_MQTTS_PORT === undefined
        ? null
        : {
            port: env.GATEWAY_MQTTS_PORT,
            certPath: path(env.GATEWAY_TLS_CERT) ?? '',
            keyPath: path(env.GATEWAY_TLS_KEY) ?? '',
            clientCaPath: path(env.GATEWAY_TLS_CLIENT_CA) ?? null,
            clientCert: env.GATEWAY_TLS_CLIENT_CERT,
          };
    const own = {
      mode: env.GATEWAY_MQTT_MODE,
      mqtt: {
        host: env.GATEWAY_MQTT_HOST ?? base.http.host,
        port: env.GATEWAY_MQTT_PORT,
        wsPort: env.GATEWAY_MQTT_WS_PORT ?? null,
        tls,
        drainTimeoutMs: env.GATEWAY_DRAIN_TIMEOUT_MS,
      },
      auth: {
        jwksUrl: env.GATEWAY_JWKS_URL,
        issuer: env.GATEWAY_TOKEN_ISSUER,
        audience: env.GATEWAY_TOKEN_AUDIENCE,
        jwksCacheMs: env.GATEWAY_JWKS_CACHE_MS,
        clockToleranceS: env.GATEWAY_TOKEN_CLOCK_TOLERANCE_S,
        sessionCheckMs: env.GATEWAY_SESSION_CHECK_MS,
      },
      limits: {
        maxPayloadBytes: env.GATEWAY_MAX_PAYLOAD_BYTES,
        ratePerS: env.GATEWAY_RATE_LIMIT_PER_S,
        rateBurst: env.GATEWAY_RATE_LIMIT_BURST,
        abuseLimit: env.GATEWAY_ABUSE_LIMIT,
        abuseWindowMs: env.GATEWAY_ABUSE_WINDOW_MS,
        busTimeoutMs: env.GATEWAY_BUS_TIMEOUT_MS,
      },
      redisUrl: (env.GATEWAY_REDIS_URL as string | undefined) ?? null,
      external:
        env.GATEWAY_MQTT_MODE === 'external'
          ? {
              url: env.GATEWAY_EXTERNAL_URL ?? '',
              username: env.GATEWAY_EXTERNAL_USERNAME,
              password: (env.GATEWAY_EXTERNAL_PASSWORD as string | undefined) ?? null,
              clientId:
                env.GATEWAY_EXTERNAL_CLIENT_ID ??
                `${env.GATEWAY_EXTERNAL_USERNAME}-${hostname()}`.slice(0, 128),
              shareGroup: env.GATEWAY_SHARE_GROUP,
            }
          : null,
    };
    const problems = gatewayConfigProblems(own);
    if (problems.length > 0) throw new ConfigError('gateway', problems);
    return own;
  },
});

export type GatewayConfig = ReturnType<typeof gatewayConfig.load>;
export type GatewayOwnConfig = GatewayConfig['own'];

/** Cross-variable rules of the gateway's own variables; a problem stops the boot like any bad variable. */
function gatewayConfigProblems(own: {
  mode: 'embedded' | 'external';
  mqtt: {
    tls: { certPath: string; keyPath: string; clientCaPath: string | null; clientCert: string } | null;
  };
  external: { url: string } | null;
  redisUrl: string | null;
}): string[] {
  const problems: string[] = [];
  if (own.mqtt.tls && (!own.mqtt.tls.certPath || !own.mqtt.tls.keyPath))
    problems.push('GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set (GATEWAY_MQTTS_PORT is set)');
  if (own.mqtt.tls?.clientCert === 'required' && !own.mqtt.tls.clientCaPath)
    problems.push('GATEWAY_TLS_CLIENT_CA must be set (GATEWAY_TLS_CLIENT_CERT=required)');
  if (own.mode === 'external' && !own.external?.url)
    problems.push('GATEWAY_EXTERNAL_URL must be set (GATEWAY_MQTT_MODE=external)');
  if (own.mode === 'external' && own.redisUrl)
    problems.push(
      'GATEWAY_REDIS_URL must not be set (GATEWAY_MQTT_MODE=external: the broker holds sessions)',
    );
  return problems;
}
