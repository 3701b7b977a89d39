import type { Command } from 'commander';
import { prepareData } from '../demo/data.js';
import {
  DEMO_ATTACKS,
  DEMO_DATASETS,
  DEMO_DEFAULTS,
  parseDemoOptions,
  ROBUST_RULES,
  type DemoFlags,
} from '../demo/options.js';
import { runDemo } from '../demo/run.js';
import { createView, statusTable } from '../demo/view.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'run a whole federated fleet end to end in one process: the five services, virtual devices over MQTT and HTTP, rounds, signed staged releases',
    )
    .option('--devices <n>', `virtual devices (default ${DEMO_DEFAULTS.devices})`)
    .option('--rounds <n>', `federated rounds (default ${DEMO_DEFAULTS.rounds})`)
    .option(
      '--dataset <name|path.csv>',
      `${DEMO_DATASETS.join(', ')} or a CSV file (default ${DEMO_DEFAULTS.dataset})`,
    )
    .option(
      '--label <column>',
      "a CSV file's label column (a header name, or an index; negative counts from the end)",
    )
    .option(
      '--alpha <a>',
      `Dirichlet label skew of the devices' partitions (default ${DEMO_DEFAULTS.dirichletAlpha})`,
    )
    .option('--attackers <fraction>', 'share of devices that attack, in [0, 1) (default 0)')
    .option('--attack <kind>', `what the attackers do: ${DEMO_ATTACKS.join(', ')}`)
    .option('--robust <rule>', `robust aggregation rule instead of FedAvg: ${ROBUST_RULES.join(', ')}`)
    .option(
      '--max-norm <n>',
      'the aggregator rejects updates whose L2 norm exceeds n (norm bounding; not with --secure-aggregation)',
    )
    .option(
      '--secure-aggregation',
      'mask the updates with secure aggregation (SecAgg+ through the SDK; with --robust, bucketed)',
    )
    .option('--dp-epsilon <e>', 'central differential privacy: total ε over all rounds (δ from --dp-delta)')
    .option('--dp-delta <d>', `δ of the privacy budget (default ${DEMO_DEFAULTS.dpDelta})`)
    .option(
      '--seed <s>',
      `seed of the data split, the initial model and training (default ${DEMO_DEFAULTS.seed})`,
    )
    .option('--epochs <n>', `local epochs per round (default ${DEMO_DEFAULTS.localEpochs})`)
    .option('--lr <rate>', `local learning rate (default ${DEMO_DEFAULTS.learningRate})`)
    .option('--batch-size <n>', `local mini-batch size (default ${DEMO_DEFAULTS.batchSize})`)
    .option('--json <out.json>', 'write the summary (edgefl.demo.summary/v1) to this file')
    .option('--report <out.html>', 'write the self-contained HTML report of the run to this file')
    .option(
      '--data-dir <dir>',
      'where the stack, the fleet and the service log live (default a new temporary directory)',
    )
    .action(async (flags: DemoFlags) => {
      // every flag and the data set are checked before anything boots (UsageError: one line, exit 2)
      const options = parseDemoOptions(flags);
      const data = prepareData(options);
      const view = createView(process.stdout);
      try {
        const run = await runDemo(options, data, view);
        view.stop();
        const s = run.summary;
        process.stdout.write(
          `${statusTable(
            s.rounds.map((r) => ({
              round: r.round,
              participants: r.participants,
              selected: s.settings.devices,
              accuracy: r.accuracy,
              epsilon: r.epsilonSpent,
              stage: `v${r.version} released`,
              mix: r.round === s.rounds.length ? s.fleetVersionMix : {},
            })),
          )}\n`,
        );
        const last = s.rounds.at(-1);
        process.stdout.write(
          `edgefl demo: ${s.rounds.length} rounds in ${s.wallSeconds.toFixed(0)} s; test accuracy ${((s.rounds[0]?.accuracy ?? 0) * 100).toFixed(1)}% after round 1, ${((last?.accuracy ?? 0) * 100).toFixed(1)}% after round ${s.rounds.length} (centralized baseline ${(s.baseline.accuracy * 100).toFixed(1)}%); logs in ${run.logFile}\n`,
        );
      } catch (error) {
        view.stop();
        throw error;
      }
    });
}
