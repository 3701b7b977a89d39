// Adapter for any Confluent-compatible schema registry, through the maintained client
// @kafkajs/confluent-schema-registry. The client is imported lazily on first use, so importing @edgefl/contracts
// (e.g. on a device, for the single-object codec) never loads it.
import type { SchemaRegistry as ConfluentClient } from '@kafkajs/confluent-schema-registry';
import { parseSchema } from '../avro.js';
import { ContractError } from '../errors.js';
import type { RegisteredSchema, SchemaRegistry } from './port.js';

export interface ConfluentSchemaRegistryOptions {
  /** Base URL, e.g. http://localhost:8081 */
  host: string;
  /** Basic auth; never logged or put into errors. */
  auth?: { username: string; password: string };
  clientId?: string;
  /** Retries of the client (default 2). */
  retries?: number;
}

function statusOf(error: unknown): number | undefined {
  if (error && typeof error === 'object' && 'status' in error) {
    const status = (error as { status: unknown }).status;
    return typeof status === 'number' ? status : undefined;
  }
  return undefined;
}

/** The client's schema objects are avsc types; their JSON form is the writer schema. */
interface SchemaLike {
  schema?: (opts?: { exportAttrs?: boolean }) => unknown;
}

export class ConfluentSchemaRegistry implements SchemaRegistry {
  readonly #options: ConfluentSchemaRegistryOptions;
  #client: Promise<ConfluentClient> | undefined;

  constructor(options: ConfluentSchemaRegistryOptions) {
    if (!options || typeof options.host !== 'string' || !/^https?:\/\//.test(options.host)) {
      throw new ContractError('INVALID_VALUE', 'ConfluentSchemaRegistry needs host as an http(s) URL', {
        paths: ['host'],
      });
    }
    this.#options = options;
  }

  #clientOnce(): Promise<ConfluentClient> {
    this.#client ??= import('@kafkajs/confluent-schema-registry').then(
      ({ SchemaRegistry }) =>
        new SchemaRegistry({
          host: this.#options.host,
          ...(this.#options.auth ? { auth: this.#options.auth } : {}),
          clientId: this.#options.clientId ?? 'edgefl',
          retry: { retries: this.#options.retries ?? 2 },
        }),
    );
    return this.#client;
  }

  /** Errors that say nothing about the schema (network, 5xx) keep their cause but never the credentials. */
  #failure(what: string, error: unknown): Error {
    const status = statusOf(error);
    return new Error(
      `schema registry ${what} failed${status ? ` (HTTP ${status})` : ''}: ${(error as Error)?.message ?? String(error)}`,
      {
        cause: error,
      },
    );
  }

  async register(subject: string, schemaJson: string): Promise<number> {
    parseSchema(schemaJson); // MALFORMED before any request
    const client = await this.#clientOnce();
    const { SchemaType } = await import('@kafkajs/confluent-schema-registry');
    try {
      const { id } = await client.register(
        { type: SchemaType.AVRO, schema: schemaJson },
        // Never rewrite the registry's compatibility config; the registry's own (BACKWARD by default) decides.
        { subject, updateConfig: false },
      );
      return id;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409) {
        throw new ContractError(
          'INCOMPATIBLE_SCHEMA',
          `schema is not compatible with subject ${subject}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      if (status === 422) {
        throw new ContractError(
          'MALFORMED',
          `registry refused the schema for ${subject}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throw this.#failure(`register(${subject})`, error);
    }
  }

  async getById(id: number): Promise<string> {
    const client = await this.#clientOnce();
    let schema: SchemaLike;
    try {
      schema = (await client.getSchema(id)) as unknown as SchemaLike;
    } catch (error) {
      if (statusOf(error) === 404)
        throw new ContractError('UNKNOWN_SCHEMA_ID', `no schema with id ${id}`, {
          schemaId: id,
          cause: error,
        });
      throw this.#failure(`getById(${id})`, error);
    }
    if (typeof schema.schema !== 'function') {
      throw new ContractError('MALFORMED', `schema ${id} is not an Avro schema`, { schemaId: id });
    }
    // The client hands back a parsed avsc type; its exported JSON keeps defaults and docs (what resolution needs).
    return JSON.stringify(schema.schema({ exportAttrs: true }));
  }

  async getLatest(subject: string): Promise<RegisteredSchema | undefined> {
    const client = await this.#clientOnce();
    let id: number;
    try {
      id = await client.getLatestSchemaId(subject);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#failure(`getLatest(${subject})`, error);
    }
    return { id, subject, version: undefined, schema: await this.getById(id) };
  }

  async close(): Promise<void> {
    // The client keeps no connections open between requests.
  }
}
