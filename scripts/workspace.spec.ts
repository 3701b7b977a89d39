import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

const root = fileURLToPath(new URL('..', import.meta.url));
const json = (path: string) => JSON.parse(readFileSync(`${root}${path}`, 'utf8')) as Record<string, unknown>;
const projects = ['libs', 'services', 'tools'].flatMap((dir) =>
  readdirSync(`${root}${dir}`).map((name) => `${dir}/${name}`),
);

describe('workspace rules', () => {
  it('runs on Node 24 LTS and never downloads onnxruntime binaries', () => {
    expect((json('package.json')['engines'] as { node: string }).node).toBe('>=24 <25');
    expect(readFileSync(`${root}.npmrc`, 'utf8')).toMatch(/^onnxruntime-node-install=skip$/m);
  });

  it('pins nx and every @nx plugin to one exact version', () => {
    const pkg = json('package.json') as { devDependencies: Record<string, string> };
    const nx = Object.entries(pkg.devDependencies).filter(
      ([name]) => name === 'nx' || name.startsWith('@nx/'),
    );
    expect(nx.length).toBeGreaterThan(1);
    expect(new Set(nx.map(([, version]) => version)).size).toBe(1);
    expect(nx[0]![1]).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('tags every project with a type and a scope', () => {
    for (const project of projects) {
      const tags = (json(`${project}/project.json`)['tags'] as string[]) ?? [];
      expect(
        tags.some((t) => t.startsWith('type:')),
        `${project} type tag`,
      ).toBe(true);
      expect(
        tags.some((t) => t.startsWith('scope:')),
        `${project} scope tag`,
      ).toBe(true);
    }
  });
});

describe('module boundaries fail the lint', () => {
  let eslint: ESLint;
  beforeAll(() => {
    // the rule reads Nx's project graph; make sure it exists (npm test computes it too)
    spawnSync('npx', ['nx', 'show', 'projects'], { cwd: root, env: { ...process.env, NX_DAEMON: 'false' } });
    eslint = new ESLint({ cwd: root });
  }, 120_000);

  const violations = async (file: string, code: string) => {
    const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
    return result!.messages.filter(
      (m) => m.ruleId === '@nx/enforce-module-boundaries' || m.ruleId === 'no-restricted-imports',
    );
  };

  it('refuses a lib of ours inside libs/fl', async () => {
    expect(
      await violations(
        'libs/fl/src/boundary-probe.ts',
        "import { freePort } from '@edgefl/testing';\nexport const p = freePort;\n",
      ),
    ).not.toHaveLength(0);
  });

  it('refuses a service imported by another service or a lib', async () => {
    expect(
      await violations(
        'services/gateway/src/boundary-probe.ts',
        "import { bootstrap } from '@edgefl/registry';\nexport const b = bootstrap;\n",
      ),
    ).not.toHaveLength(0);
    expect(
      await violations(
        'libs/bus/src/boundary-probe.ts',
        "import { bootstrap } from '@edgefl/registry';\nexport const b = bootstrap;\n",
      ),
    ).not.toHaveLength(0);
  });

  it('refuses NestJS and node-vault in edge-safe libs', async () => {
    expect(
      await violations(
        'libs/contracts/src/boundary-probe.ts',
        "import { Injectable } from '@nestjs/common';\nexport const i = Injectable;\n",
      ),
    ).not.toHaveLength(0);
    expect(
      await violations(
        'libs/keys/src/boundary-probe.ts',
        "import vault from 'node-vault';\nexport const v = vault;\n",
      ),
    ).not.toHaveLength(0);
  });

  it('lets tests of pure and edge-safe libs use the test harness, and nothing else of ours', async () => {
    const harness = "import { tempDir } from '@edgefl/testing';\nexport const t = tempDir;\n";
    expect(await violations('libs/fl/src/boundary-probe.spec.ts', harness)).toHaveLength(0);
    expect(await violations('libs/keys/test/boundary-probe.spec.ts', harness)).toHaveLength(0);
    expect(await violations('libs/fl/src/boundary-probe.ts', harness)).not.toHaveLength(0);
    const bus = "import { EmbeddedBus } from '@edgefl/bus';\nexport const b = EmbeddedBus;\n";
    expect(await violations('libs/fl/src/boundary-probe.spec.ts', bus)).not.toHaveLength(0);
  });

  it('allows what the design allows: a service importing libs', async () => {
    expect(
      await violations(
        'services/gateway/src/boundary-probe.ts',
        "import { freePort } from '@edgefl/testing';\nimport { loadConfig } from '@edgefl/service-kit';\nexport const x = [freePort, loadConfig];\n",
      ),
    ).toHaveLength(0);
  });
});
