// BACKWARD compatibility (Avro schema resolution): a reader with the new schema must read data written with the old.
import { canRead, parseSchema } from './avro.js';
import { RELEASED_SCHEMAS, type ReleasedSchema } from './generated/released.js';
import { SCHEMAS, type JsonValue } from './generated/schemas.js';

export interface CompatibilityProblem {
  release: number;
  schema: string;
  why: string;
}

/** Whether a reader with `newer` can read what `older` wrote; `why` explains a refusal. */
export function isBackwardCompatible(
  newer: JsonValue | string,
  older: JsonValue | string,
): { ok: true } | { ok: false; why: string } {
  return canRead(parseSchema(newer), parseSchema(older));
}

/**
 * Checks every released schema against the current schema of the same full name. A released schema whose name no
 * longer exists is a problem too (its topics/channels would stop decoding).
 */
export function checkAgainstReleases(
  current: Readonly<Record<string, JsonValue>> = SCHEMAS,
  released: readonly ReleasedSchema[] = RELEASED_SCHEMAS,
): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  for (const old of released) {
    const now = current[old.fullName];
    if (now === undefined) {
      problems.push({ release: old.release, schema: old.fullName, why: 'schema was removed' });
      continue;
    }
    const verdict = isBackwardCompatible(now, old.schema);
    if (!verdict.ok) problems.push({ release: old.release, schema: old.fullName, why: verdict.why });
  }
  return problems;
}
