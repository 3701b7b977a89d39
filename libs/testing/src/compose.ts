import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string; args?: Record<string, string> };
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
  ports?: string[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

/**
 * Compose's own variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$$`), done before
 * parsing as compose does, so a test sees the values a container would get.
 */
export function interpolateCompose(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g,
    (match, name?: string, op?: string, fallback?: string) => {
      if (match === '$$') return '$';
      const value = env[name!];
      if (op === ':-') return value === undefined || value === '' ? (fallback ?? '') : value;
      if (op === '-') return value === undefined ? (fallback ?? '') : value;
      return value ?? '';
    },
  );
}

/** Parses a compose file (YAML anchors and `<<` merge keys resolved) after interpolation. */
export function readComposeFile(path: string, env: Record<string, string | undefined> = {}): ComposeFile {
  return parse(interpolateCompose(readFileSync(path, 'utf8'), env), { merge: true }) as ComposeFile;
}

/** A compose service's environment as the strings the process would see. */
export function composeEnvironment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const index = entry.indexOf('=');
        return index < 0 ? [entry, ''] : [entry.slice(0, index), entry.slice(index + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}
