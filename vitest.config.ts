import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// The @edgefl/* aliases come from tsconfig.base.json, the single place they are declared.
const root = fileURLToPath(new URL('.', import.meta.url));
const { compilerOptions } = JSON.parse(readFileSync(`${root}tsconfig.base.json`, 'utf8')) as {
  compilerOptions: { paths: Record<string, [string]> };
};
const alias = Object.entries(compilerOptions.paths)
  .sort(([a], [b]) => b.length - a.length) // '@edgefl/keys/vault' before '@edgefl/keys'
  .map(([find, [target]]) => ({ find, replacement: `${root}${target.replace(/^\.\//, '')}` }));

export default defineConfig({
  // SWC, not the default transform: NestJS needs decorator metadata.
  plugins: [
    swc.vite({
      swcrc: false,
      tsconfigFile: false,
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        target: 'es2024',
        keepClassNames: true,
      },
    }),
  ],
  oxc: false,
  resolve: { alias },
  test: {
    include: [
      '{libs,services,tools}/*/{src,test}/**/*.spec.ts',
      'infra/**/*.spec.ts',
      'scripts/**/*.spec.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    // With a broker, service suites also run on Kafka, where services' consumer groups are fixed names: files run
    // one at a time so two copies of one service never split a group's partitions (npm run test:kafka does too).
    fileParallelism: !process.env['KAFKA_BROKERS'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
