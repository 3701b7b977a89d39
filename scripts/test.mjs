#!/usr/bin/env node
// npm test: the static checks (types, lint with module boundaries, formatting, build) and every Vitest suite.
// Ends with one line `N passed, N failed, N skipped` summed over all of them (each static check counts as one).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, NX_DAEMON: 'false', ...env } })
    .status ?? 1;

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const check = (name, cmd, args) => {
  console.log(`\n### ${name}`);
  if (run(cmd, args) === 0) passed++;
  else {
    failed++;
    failures.push(name);
  }
};

// The module-boundary lint rule reads Nx's project graph; compute it first so the rule never skips silently.
check('nx project graph', 'npx', ['nx', 'show', 'projects']);
check('typecheck (tsc --noEmit)', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
check('lint (eslint, module boundaries)', 'npx', ['eslint', '.', '--max-warnings=0']);
check('format (prettier --check)', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']);
check('build (swc, every project)', 'npx', [
  'nx',
  'run-many',
  '-t',
  'build',
  '--output-style=static',
  '--skip-nx-cache',
]);

console.log('\n### vitest');
const out = join(root, 'tmp', 'vitest-report.json');
mkdirSync(dirname(out), { recursive: true });
rmSync(out, { force: true });
const vitestStatus = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
]);
if (existsSync(out)) {
  const report = JSON.parse(readFileSync(out, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // a file that fails to load has no tests but is a failure
  const brokenFiles = report.testResults.filter(
    (r) => r.status === 'failed' && r.assertionResults.length === 0,
  );
  failed += brokenFiles.length;
  if (report.numFailedTests > 0 || brokenFiles.length > 0) failures.push('vitest');
} else if (vitestStatus !== 0) {
  failed++;
  failures.push('vitest (no report)');
}
if (failures.length > 0) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && vitestStatus === 0 ? 0 : 1);
