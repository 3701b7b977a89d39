import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const workspaceRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const cliBin = fileURLToPath(new URL('../bin/edgefl.js', import.meta.url));

/** Builds the CLI and everything it runs (cached by Nx when nothing changed). */
export function buildCli(): void {
  const result = spawnSync('npx', ['nx', 'run', 'cli:build', '--output-style=static'], {
    cwd: workspaceRoot,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false' },
  });
  if (result.status !== 0) throw new Error(`nx run cli:build failed:\n${result.stdout}\n${result.stderr}`);
}

/** Runs `edgefl <args>` to completion. */
export function runCli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cliBin, ...args], {
    cwd: workspaceRoot,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}

/** Starts `edgefl <args>` and resolves once stderr matched `ready` (or rejects when the process exits first). */
export function startCli(args: string[], env: Record<string, string>, ready: RegExp) {
  const child: ChildProcess = spawn(process.execPath, [cliBin, ...args], {
    cwd: workspaceRoot,
    env: { ...process.env, ...env },
  });
  let stderr = '';
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const started = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (ready.test(stderr)) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`edgefl ${args.join(' ')} exited with ${code} before it was ready:\n${stderr}`)),
    );
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, started, exited, output: () => ({ stdout, stderr }) };
}
