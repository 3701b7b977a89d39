import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { composeEnvironment, readComposeFile } from './compose.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Checks docker-compose.yml for one service without a Docker engine: its environment passes the service's own
 * config schema (the same validation that runs at boot), it is built from the shared Dockerfile for itself, it
 * waits for healthy dependencies, has a healthcheck, and publishes the port it listens on.
 */
export function runComposeConfigSuite(
  name: string,
  config: { load(env: Record<string, string | undefined>): { http: { port: number } } },
): void {
  describe(`docker-compose.yml: ${name}`, () => {
    const compose = readComposeFile(`${root}docker-compose.yml`, {});
    const service = compose.services[name];

    it('is declared, built from the shared Dockerfile for itself', () => {
      expect(service, `service ${name} in docker-compose.yml`).toBeDefined();
      expect(service!.build).toMatchObject({
        dockerfile: 'Dockerfile',
        target: 'runtime',
        args: { SERVICE: name },
      });
      expect(existsSync(`${root}Dockerfile`)).toBe(true);
    });

    it('has an environment its config schema accepts', () => {
      const env = composeEnvironment(service!);
      expect(() => config.load(env)).not.toThrow();
      const loaded = config.load(env) as {
        http: { port: number };
        bus: { adapter: string };
        keys: { kind: string };
      };
      expect(loaded.bus.adapter).toBe('kafka');
      expect(loaded.keys.kind).toBe('vault');
      expect(service!.ports).toContain(`${loaded.http.port}:${loaded.http.port}`);
    });

    it('waits for healthy dependencies and has a healthcheck of its own', () => {
      const dependsOn = service!.depends_on as Record<string, { condition: string }>;
      for (const dependency of ['kafka', 'schema-registry', 'vault', 'postgres']) {
        expect(dependsOn[dependency], dependency).toEqual({ condition: 'service_healthy' });
        expect(compose.services[dependency]?.healthcheck, `${dependency} healthcheck`).toBeDefined();
      }
      expect(dependsOn['vault-init']).toEqual({ condition: 'service_completed_successfully' });
      expect(JSON.stringify(service!.healthcheck?.test)).toContain('/health/ready');
    });
  });
}
