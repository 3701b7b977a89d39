import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';
import { readSummary } from './read-summary.js';
import { writeReport } from './write-report.js';

/** `edgefl report --in summary.json --out report.html`: the demo's HTML report from a saved JSON summary. */
export function register(program: Command): void {
  program
    .command('report')
    .description('render the HTML report of a demo run from its JSON summary (`edgefl demo --json`)')
    .requiredOption('--in <summary.json>', 'the demo summary (format edgefl.demo.summary/v1)')
    .requiredOption('--out <report.html>', 'where to write the self-contained HTML report')
    .action(async (options: { in: string; out: string }) => {
      if (resolve(options.in) === resolve(options.out)) {
        throw new UsageError(
          `--out ${options.out} is the summary itself: writing the report would destroy it`,
        );
      }
      const summary = await readSummary(options.in);
      const { bytes } = await writeReport(summary, options.out);
      process.stdout.write(`report written to ${options.out} (${Math.round(bytes / 1024)} KiB)\n`);
    });
}
