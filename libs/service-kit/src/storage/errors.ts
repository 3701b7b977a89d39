/** A write lost against a uniqueness rule (same version created twice, a second live release, a replayed id). */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
}

/** True for a unique/primary-key violation from node:sqlite or pg. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; errcode?: unknown; message?: unknown };
  if (e.code === '23505') return true; // PostgreSQL unique_violation
  // node:sqlite: code ERR_SQLITE_ERROR with errcode SQLITE_CONSTRAINT_UNIQUE (2067) / PRIMARYKEY (1555)
  if (e.errcode === 2067 || e.errcode === 1555) return true;
  return typeof e.message === 'string' && /UNIQUE constraint failed/.test(e.message);
}
