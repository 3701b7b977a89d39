// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';

/**
 * The dependency rules of docs/architecture.md ("Parts and their arrows"). Tests (`*.spec.ts`, `test/`, a lib's
 * shared contract suite) may also use the test harness (libs/testing, tagged kind:testing) from pure and edge-safe
 * libs; production code may not.
 */
function moduleBoundaries(tests) {
  const harness = tests ? ['kind:testing'] : [];
  return {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: [
      // nothing imports an application (services never import each other)
      { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib'] },
      { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib'] },
      // libs/fl and libs/model import no lib of ours
      tests
        ? { sourceTag: 'scope:pure', onlyDependOnLibsWithTags: harness }
        : { sourceTag: 'scope:pure', notDependOnLibsWithTags: ['type:lib', 'type:app'] },
      // the device runtime uses only edge-safe libs and no NestJS, Kafka or Vault package
      {
        sourceTag: 'scope:device',
        onlyDependOnLibsWithTags: ['runtime:edge', ...harness],
        bannedExternalImports: ['@nestjs/*', 'kafkajs', 'node-vault', '@confluentinc/*'],
      },
      // edge-safe libs stay edge-safe
      {
        sourceTag: 'runtime:edge',
        onlyDependOnLibsWithTags: ['runtime:edge', ...harness],
        bannedExternalImports: ['@nestjs/*', 'kafkajs', '@confluentinc/*'],
      },
    ],
  };
}

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '.nx/**',
      '.ci/.cache/**',
      'coverage/**',
      'bench/results/**',
      'libs/contracts/src/generated/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'off',
      // docs/architecture.md: the dependency direction is enforced here and fails the build.
      '@nx/enforce-module-boundaries': ['error', moduleBoundaries(false)],
      // the test harness is for test code only (an Nx tag rule would also follow test-only edges transitively);
      // Nest's @Body would read a body the kit's JSON parser refused as if it were empty
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            '@edgefl/testing',
            {
              name: '@nestjs/common',
              importNames: ['Body'],
              message:
                "use @edgefl/service-kit's ValidBody or JsonBody: they raise the parser's refusal of a body",
            },
          ],
        },
      ],
    },
  },
  {
    // test code: specs, test folders, and the contract suites a lib ships for its adapters' specs
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'libs/bus/src/contract/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', moduleBoundaries(true)],
      '@typescript-eslint/no-restricted-imports': 'off',
    },
  },
  {
    // the Vault adapter is the one place of libs/keys allowed to pull node-vault
    files: ['libs/keys/src/**/*.ts'],
    ignores: ['libs/keys/src/vault/**'],
    rules: { 'no-restricted-imports': ['error', { paths: ['node-vault'] }] },
  },
  {
    files: ['libs/device-sdk/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['@edgefl/keys/vault', '@nestjs/*'] }] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
  },
);
