#!/usr/bin/env node
// The `edgefl` command. It runs the compiled CLI; on a fresh checkout it builds the workspace once first.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cliRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(cliRoot, 'dist', 'main.js');
if (!existsSync(entry)) {
  const workspace = join(cliRoot, '..', '..');
  const status = spawnSync('npx', ['nx', 'run', 'cli:build', '--output-style=static'], {
    cwd: workspace,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NX_DAEMON: 'false' },
  }).status;
  if (status !== 0) {
    console.error(
      'edgefl: the CLI is not built and `nx run cli:build` failed; run `npm run build` to see why',
    );
    process.exit(1);
  }
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv);
