#!/usr/bin/env node
// npm run bench [name ...]: builds the workspace, then runs bench/<name>.bench.ts (all of them without a name).
// Benchmarks import the built libraries (dist/) and run under Node's own type stripping.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const all = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${all.join(', ')}`);
  process.exit(2);
}
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;
if (run('npx', ['nx', 'run-many', '-t', 'build', '--output-style=static']) !== 0) process.exit(1);
let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n### bench ${name}`);
  if (run(process.execPath, ['--expose-gc', join('bench', `${name}.bench.ts`)]) !== 0) {
    console.error(`bench ${name} failed`);
    failed++;
  }
}
process.exit(failed === 0 ? 0 : 1);
