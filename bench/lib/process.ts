// Shared by benchmarks that start servers in-process and drive them from another process (the load must not share
// the server's event loop). Benchmarks may not import the test harness, so the free-port probe lives here too.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Runs `node <script> <args…>` (async: servers in this process keep serving) and parses its last stdout line. */
export async function runJsonChild<T>(script: string, args: readonly string[], what: string): Promise<T> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${what} failed: ${err}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}
