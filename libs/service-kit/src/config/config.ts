import { z } from 'zod';

/** A configuration error found at boot: one line naming each bad variable and what was expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly service: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration for ${service}: ${problems.join('; ')}`);
  }
}

const secretVariables = new WeakSet<z.ZodType>();

/** Marks a variable as secret: its value is never echoed in errors and is scrubbed from every log line. */
export function secret<T extends z.ZodType>(schema: T): T {
  secretVariables.add(schema);
  return schema;
}

export type EnvSchema = z.ZodObject<Record<string, z.ZodType>>;

function describeExpected(issue: z.core.$ZodIssue): string {
  // a message written in our schemas ("a postgres:// URL", "set (…)") says it best
  if (!/^(Invalid|Too (big|small))/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    case 'invalid_type':
      return `${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}`;
    case 'too_big':
      return `at most ${String(issue.maximum)}`;
    case 'too_small':
      return `at least ${String(issue.minimum)}`;
    case 'invalid_format':
      return `a valid ${issue.format}`;
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

/** Names of the variables declared secret in an environment schema. */
export function secretNames(schema: EnvSchema): string[] {
  return Object.entries(schema.shape)
    .filter(([, field]) => isSecret(field))
    .map(([name]) => name);
}

function isSecret(field: z.ZodType): boolean {
  if (secretVariables.has(field)) return true;
  const inner = (field as unknown as { def?: { innerType?: z.ZodType } }).def?.innerType;
  return inner !== undefined && isSecret(inner);
}

/**
 * Validates the environment against a service's schema and returns the typed result. Any problem throws one
 * ConfigError listing every bad variable, what was expected and (unless secret) what was found.
 */
export function loadConfig<S extends z.ZodType>(
  service: string,
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.output<S> {
  // Empty strings mean "unset": `FOO=` in a compose file or shell must not turn into an empty hostname.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const secrets = new Set(schema instanceof z.ZodObject ? secretNames(schema as unknown as EnvSchema) : []);
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.') || '(environment)';
    const raw = typeof issue.path[0] === 'string' ? cleaned[issue.path[0]] : undefined;
    const got =
      raw === undefined
        ? 'it is not set'
        : secrets.has(name)
          ? 'got a value (secret, not shown)'
          : `got ${JSON.stringify(raw)}`;
    return `${name} must be ${describeExpected(issue)} (${got})`;
  });
  throw new ConfigError(service, problems);
}

/** Values of the secret variables actually present, for the log scrubber. */
export function secretValues(schema: EnvSchema, env: Record<string, string | undefined>): string[] {
  return secretNames(schema)
    .map((name) => env[name])
    .filter((value): value is string => typeof value === 'string' && value.length >= 4);
}

export const port = (fallback: number) => z.coerce.number().int().min(1).max(65_535).default(fallback);
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
export const csv = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string()).min(1, 'at least one comma-separated entry'));
