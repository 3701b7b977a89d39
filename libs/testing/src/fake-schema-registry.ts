// A small in-process stand-in for the Confluent Schema Registry REST API (v1), for Kafka-mode tests where no
// Confluent-compatible registry is reachable. Written by hand because no npm package serves this API in process;
// Avro compatibility is avsc's schema resolution. It serves what clients use, with the real API's paths, bodies,
// content type and error codes:
//   GET  /subjects                                    → ["s", …]
//   GET  /subjects/{s}/versions                       → [1, 2, …]                           40401
//   GET  /subjects/{s}/versions/{v|latest}            → { subject, version, id, schema }    40401 40402
//   GET  /subjects/{s}/versions/{v|latest}/schema     → the schema itself
//   POST /subjects/{s}/versions  { schema }           → { id }        409 incompatible, 42201 invalid schema
//   POST /subjects/{s}           { schema }           → { subject, version, id, schema }    40401 40403
//   DELETE /subjects/{s}                              → [versions]                           40401
//   GET  /schemas/ids/{id}                            → { schema }                           40403
//   GET  /schemas/ids/{id}/versions                   → [{ subject, version }]               40403
//   POST /compatibility/subjects/{s}/versions/{v|latest} { schema } → { is_compatible }    40401 40402 42201
//   GET  /config, PUT /config { compatibility }       → { compatibilityLevel } / { compatibility }
//   GET  /config/{s} (?defaultToGlobal=true), PUT /config/{s}                               40408
// Ids are global (the same schema under two subjects has one id), versions per subject, BACKWARD by default.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';

const LEVELS = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;
type Level = (typeof LEVELS)[number];

export interface FakeSchemaRegistry {
  /** Base URL, e.g. http://127.0.0.1:40123 (what SCHEMA_REGISTRY_URL takes). */
  url: string;
  /** Requests served, as `METHOD /path` (for tests of the fake's clients). */
  requests: string[];
  close(): Promise<void>;
}

let shared: Promise<FakeSchemaRegistry> | null = null;

/**
 * One fake registry for every Kafka-mode test service of this test process (as a real shared registry would be:
 * services restarted on the same data keep their schema ids). It never keeps the process alive.
 */
export function sharedFakeSchemaRegistry(): Promise<FakeSchemaRegistry> {
  return (shared ??= startFakeSchemaRegistry({ unref: true }));
}

class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

function parse(schema: unknown): { canonical: string; type: avro.Type } {
  if (typeof schema !== 'string')
    throw new RegistryError(422, 42201, 'Invalid schema: "schema" must be a string');
  try {
    const json: unknown = JSON.parse(schema);
    return { canonical: JSON.stringify(json), type: avro.Type.forSchema(json as avro.Schema) };
  } catch (error) {
    throw new RegistryError(422, 42201, `Invalid schema: ${(error as Error).message}`);
  }
}

/** True when `reader` can read what `writer` wrote (Avro schema resolution). */
function canRead(reader: avro.Type, writer: avro.Type): boolean {
  try {
    reader.createResolver(writer);
    return true;
  } catch {
    return false;
  }
}

function compatible(level: Level, candidate: avro.Type, existing: avro.Type[]): boolean {
  if (level === 'NONE' || existing.length === 0) return true;
  const against = level.endsWith('_TRANSITIVE') ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  return against.every(
    (old) => (!backward || canRead(candidate, old)) && (!forward || canRead(old, candidate)),
  );
}

/** Starts the fake on a free port of 127.0.0.1 (`unref`: it does not keep the process alive). */
export async function startFakeSchemaRegistry(
  options: { unref?: boolean } = {},
): Promise<FakeSchemaRegistry> {
  const schemas: Array<{ canonical: string; type: avro.Type }> = []; // id - 1
  const subjects = new Map<string, number[]>(); // subject → ids by version - 1
  let globalLevel: Level = 'BACKWARD';
  const subjectLevels = new Map<string, Level>();
  const requests: string[] = [];

  const versionsOf = (subject: string): number[] => {
    const versions = subjects.get(subject);
    if (!versions || versions.length === 0)
      throw new RegistryError(404, 40401, `Subject '${subject}' not found.`);
    return versions;
  };
  const versionIndex = (subject: string, raw: string): number => {
    const versions = versionsOf(subject);
    if (raw === 'latest' || raw === '-1') return versions.length - 1;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > versions.length)
      throw new RegistryError(404, 40402, `Version ${raw} not found.`);
    return n - 1;
  };
  const versionBody = (subject: string, index: number) => {
    const id = subjects.get(subject)![index]!;
    return { subject, version: index + 1, id, schema: schemas[id - 1]!.canonical };
  };
  const levelOf = (subject: string): Level => subjectLevels.get(subject) ?? globalLevel;
  const readLevel = (body: Record<string, unknown>): Level => {
    const level = body['compatibility'];
    if (typeof level !== 'string' || !(LEVELS as readonly string[]).includes(level))
      throw new RegistryError(422, 42203, `Invalid compatibility level ${JSON.stringify(level)}`);
    return level as Level;
  };

  const route = (
    method: string,
    parts: string[],
    query: URLSearchParams,
    body: Record<string, unknown>,
  ): unknown => {
    const [root, a, b, c, d] = parts;
    if (root === 'subjects') {
      if (a === undefined && method === 'GET')
        return [...subjects].filter(([, v]) => v.length > 0).map(([s]) => s);
      const subject = a!;
      if (b === undefined && method === 'DELETE') {
        const versions = versionsOf(subject).map((_, i) => i + 1);
        subjects.delete(subject);
        return versions;
      }
      if (b === undefined && method === 'POST') {
        const { canonical } = parse(body['schema']);
        const versions = versionsOf(subject);
        const index = versions.findIndex((id) => schemas[id - 1]!.canonical === canonical);
        if (index < 0) throw new RegistryError(404, 40403, 'Schema not found');
        return versionBody(subject, index);
      }
      if (b === 'versions' && c === undefined && method === 'GET')
        return versionsOf(subject).map((_, i) => i + 1);
      if (b === 'versions' && c === undefined && method === 'POST') {
        const parsed = parse(body['schema']);
        if (body['schemaType'] !== undefined && body['schemaType'] !== 'AVRO')
          throw new RegistryError(
            422,
            42201,
            `Invalid schema type ${String(body['schemaType'])}: only AVRO here`,
          );
        const versions = subjects.get(subject) ?? [];
        const known = versions.find((id) => schemas[id - 1]!.canonical === parsed.canonical);
        if (known !== undefined) return { id: known };
        const existing = versions.map((id) => schemas[id - 1]!.type);
        if (!compatible(levelOf(subject), parsed.type, existing))
          throw new RegistryError(
            409,
            409,
            `Schema being registered is incompatible with an earlier schema for subject "${subject}" (${levelOf(subject)})`,
          );
        let id = schemas.findIndex((s) => s.canonical === parsed.canonical) + 1;
        if (id === 0) id = schemas.push(parsed);
        subjects.set(subject, [...versions, id]);
        return { id };
      }
      if (b === 'versions' && c !== undefined && method === 'GET') {
        const index = versionIndex(subject, c);
        if (d === 'schema') return JSON.parse(versionBody(subject, index).schema) as unknown;
        if (d === undefined) return versionBody(subject, index);
      }
    }
    if (root === 'schemas' && a === 'ids' && b !== undefined && method === 'GET') {
      const id = Number(b);
      const schema = Number.isInteger(id) ? schemas[id - 1] : undefined;
      if (!schema) throw new RegistryError(404, 40403, 'Schema not found');
      if (c === undefined) return { schema: schema.canonical };
      if (c === 'versions')
        return [...subjects].flatMap(([subject, ids]) =>
          ids.flatMap((x, i) => (x === id ? [{ subject, version: i + 1 }] : [])),
        );
    }
    if (
      root === 'compatibility' &&
      a === 'subjects' &&
      b !== undefined &&
      c === 'versions' &&
      d !== undefined
    ) {
      if (method !== 'POST') throw new RegistryError(405, 405, 'Method not allowed');
      const parsed = parse(body['schema']);
      const index = versionIndex(b, d);
      const ids = subjects.get(b)!;
      const level = levelOf(b);
      // A given version is checked alone; `latest` follows the subject's level (transitive: every version).
      const existing = (d === 'latest' && level.endsWith('_TRANSITIVE') ? ids : [ids[index]!]).map(
        (id) => schemas[id - 1]!.type,
      );
      return { is_compatible: compatible(level, parsed.type, existing) };
    }
    if (root === 'config') {
      if (a === undefined && method === 'GET') return { compatibilityLevel: globalLevel };
      if (a === undefined && method === 'PUT') return { compatibility: (globalLevel = readLevel(body)) };
      if (a !== undefined && method === 'GET') {
        const level = subjectLevels.get(a);
        if (level) return { compatibilityLevel: level };
        if (query.get('defaultToGlobal') === 'true') return { compatibilityLevel: globalLevel };
        throw new RegistryError(
          404,
          40408,
          `Subject '${a}' does not have subject-level compatibility configured`,
        );
      }
      if (a !== undefined && method === 'PUT') {
        const level = readLevel(body);
        subjectLevels.set(a, level);
        return { compatibility: level };
      }
    }
    throw new RegistryError(404, 404, 'HTTP 404 Not Found');
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://registry');
      const method = req.method ?? 'GET';
      requests.push(`${method} ${url.pathname}`);
      try {
        const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        if (text.length > 0) {
          try {
            const parsed: unknown = JSON.parse(text);
            if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
              body = parsed as Record<string, unknown>;
            else throw new Error('not an object');
          } catch {
            throw new RegistryError(400, 400, 'Request body is not a JSON object');
          }
        }
        send(res, 200, route(method, parts, url.searchParams, body));
      } catch (error) {
        if (error instanceof RegistryError)
          return send(res, error.status, { error_code: error.errorCode, message: error.message });
        send(res, 500, { error_code: 50001, message: (error as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  if (options.unref) server.unref();
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
