import { Param } from '@nestjs/common';
import { ZodParamPipe } from '@edgefl/service-kit';
import { z } from 'zod';

/** A model version number: a positive 32-bit integer (the Avro `int` of every event that carries one). */
export const VersionNumber = z.coerce.number().int().min(1).max(2_147_483_647);

/**
 * A version number in a path or query string: canonical decimal only (`1`, never `0x1`, `1e0`, ` 1` or `01`), so
 * one version has one URL (and one cache key).
 */
export const VersionText = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, 'a version number in canonical decimal')
  .transform(Number)
  .pipe(z.number().max(2_147_483_647));

/** `@VersionParam('version') version: number` — a validated version number in the path (400 otherwise). */
export const VersionParam = (name: string): ParameterDecorator =>
  Param(name, new ZodParamPipe(VersionText, name));
