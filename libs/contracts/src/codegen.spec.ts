import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER, generate } from '../scripts/codegen.mjs';

const libRoot = fileURLToPath(new URL('..', import.meta.url));

describe('codegen', () => {
  const files = generate(libRoot);

  it('generates the types, the embedded schemas and the released snapshots', () => {
    expect([...files.keys()].sort()).toEqual([
      'src/generated/released.ts',
      'src/generated/schemas.ts',
      'src/generated/types.ts',
    ]);
    for (const content of files.values()) expect(content.startsWith(HEADER)).toBe(true);
    const types = files.get('src/generated/types.ts')!;
    expect(types).toContain('export interface InferenceLog {');
    expect(types).toContain("export type InferenceSource = 'EDGE' | 'CLOUD' | 'EDGE_FALLBACK';");
    expect(types).toContain('weights: WeightsReference | Buffer;');
  });

  it('committed generated files are up to date (run `npm run codegen` when this fails)', () => {
    const stale = [...files]
      .filter(([path, content]) => readFileSync(join(libRoot, path), 'utf8') !== content)
      .map(([path]) => path);
    expect(stale).toEqual([]);
  });
});
