import { Command, CommanderError } from 'commander';
import { commandGroups } from './commands/index.js';
import { register as report } from './report/command.js';
import { RoundAbortedError, UsageError } from './usage-error.js';

export function buildProgram(): Command {
  const program = new Command('edgefl')
    .description(
      'edgefl: federated learning, signed staged OTA releases and tiered inference for edge fleets',
    )
    .exitOverride()
    .configureOutput({ outputError: (message, write) => write(message) });
  for (const register of [...commandGroups, report]) register(program);
  return program;
}

/**
 * Runs the CLI and returns the process exit code: 0 ok, 2 bad input (one-line reason on stderr), 3 a secure
 * aggregation round aborted (one-line reason), 1 failure.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    process.exitCode = undefined;
    await buildProgram().parseAsync(argv);
    // a command that ran but failed (e.g. `device run --once` not reaching ACTIVE) sets process.exitCode
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    process.exitCode = undefined;
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      return 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`edgefl: ${error.message.replace(/\s+/g, ' ')}\n`);
      return 2;
    }
    if (error instanceof RoundAbortedError) {
      process.stderr.write(`edgefl: ${error.message.replace(/\s+/g, ' ')}\n`);
      return 3;
    }
    // system errors (a port in use, a missing file) are the environment's, not a bug: one line, no stack
    const systemError = error as NodeJS.ErrnoException;
    const line =
      typeof systemError.syscall === 'string' ? systemError.message : (systemError.stack ?? String(error));
    process.stderr.write(`edgefl: ${line}\n`);
    return 1;
  }
}
