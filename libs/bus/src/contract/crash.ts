import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BusConfig } from '../config.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** A consumer in a child process (see crash-child.ts); resolves once it has subscribed. */
export async function startChildConsumer(
  config: BusConfig,
  group: string,
  topic: string,
  script: { file: string; args: string[] } = { file: './crash-child.ts', args: [] },
): Promise<ChildConsumer> {
  const child = spawn(
    process.execPath,
    [
      '--no-warnings',
      '--import',
      here('./ts-hooks.mjs'),
      here(script.file),
      JSON.stringify(config),
      group,
      topic,
      ...script.args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const consumer = new ChildConsumer(child);
  await consumer.waitFor('subscribed');
  return consumer;
}

export class ChildConsumer {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private readonly waiters = new Set<() => void>();

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
      for (const w of this.waiters) w();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.err += d.toString();
    });
    child.on('exit', () => {
      for (const w of this.waiters) w();
    });
  }

  /** Resolves when a stdout line equals `line`; rejects if the child exits first or after timeoutMs. */
  waitFor(line: string, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.out.split('\n').includes(line)) return finish(null);
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          return finish(new Error(`child consumer exited before "${line}": ${this.err.slice(-2_000)}`));
        }
      };
      const timer = setTimeout(
        () =>
          finish(
            new Error(`child consumer did not print "${line}" in ${timeoutMs} ms: ${this.err.slice(-2_000)}`),
          ),
        timeoutMs,
      );
      const finish = (error: Error | null) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the child has exited (on its own, e.g. it killed itself). */
  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  /** SIGKILL: no handler finishes, nothing is committed, no goodbye to the group. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}
