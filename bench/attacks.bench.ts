// Accuracy under attack (issue 17's figures): `edgefl demo` on digits with 20% attackers (sign flip by default), the
// same seed and partitions under FedAvg (the control), trimmed mean and Multi-Krum; peer, same run: FedAvg with no
// attacker. Each run is the whole loop (services, real SDK devices over MQTT and HTTP, staged releases); two demos
// run at a time. Env: ATTACK_BENCH_DEVICES (40), ATTACK_BENCH_ROUNDS (8), ATTACK_BENCH_ATTACK (sign-flip),
// ATTACK_BENCH_ALPHA (0.5), ATTACK_BENCH_SEED (42).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { figure, writeReport } from './lib/report.ts';

const DEVICES = process.env.ATTACK_BENCH_DEVICES ?? '40';
const ROUNDS = process.env.ATTACK_BENCH_ROUNDS ?? '8';
const ATTACK = process.env.ATTACK_BENCH_ATTACK ?? 'sign-flip';
const ALPHA = process.env.ATTACK_BENCH_ALPHA ?? '0.5';
const SEED = process.env.ATTACK_BENCH_SEED ?? '42';

interface Summary {
  wallSeconds: number;
  baseline: { accuracy: number };
  rounds: Array<{ accuracy: number }>;
}

const dir = mkdtempSync(join(tmpdir(), 'edgefl-attack-bench-'));

function demo(name: string, extra: string[]): Promise<Summary> {
  const json = join(dir, `${name}.json`);
  const args = [
    'tools/cli/bin/edgefl.js',
    'demo',
    ...['--devices', DEVICES, '--rounds', ROUNDS, '--dataset', 'digits', '--alpha', ALPHA, '--seed', SEED],
    ...extra,
    ...['--json', json, '--data-dir', join(dir, name)],
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(readFileSync(json, 'utf8')) as Summary)
        : reject(new Error(`demo ${name} exited ${code}: ${stderr}`)),
    );
  });
}

const attacked = ['--attackers', '0.2', '--attack', ATTACK];
const runs: Array<[string, string[]]> = [
  ['clean-fedavg', []],
  ['fedavg', attacked],
  ['trimmed-mean', [...attacked, '--robust', 'trimmed-mean']],
  ['multi-krum', [...attacked, '--robust', 'multi-krum']],
];
const results = new Map<string, Summary>();
for (let i = 0; i < runs.length; i += 2) {
  const pair = runs.slice(i, i + 2);
  const done = await Promise.all(pair.map(([name, extra]) => demo(name, extra)));
  pair.forEach(([name], k) => results.set(name, done[k]!));
}
rmSync(dir, { recursive: true, force: true });

const final = (name: string) => results.get(name)!.rounds.at(-1)!.accuracy * 100;
const clean = { name: 'FedAvg, no attacker', value: final('clean-fedavg') };
const curve = (name: string) =>
  `${name}: ${results
    .get(name)!
    .rounds.map((r) => (r.accuracy * 100).toFixed(1))
    .join(' → ')} (${results.get(name)!.wallSeconds.toFixed(0)} s)`;
writeReport({
  name: 'attacks',
  figures: [
    figure(`final accuracy, 20% ${ATTACK}, FedAvg (control)`, '%', final('fedavg'), clean),
    figure(`final accuracy, 20% ${ATTACK}, trimmed mean`, '%', final('trimmed-mean'), clean),
    figure(`final accuracy, 20% ${ATTACK}, Multi-Krum`, '%', final('multi-krum'), clean),
    figure(
      'centralized baseline (same split, same passes)',
      '%',
      results.get('clean-fedavg')!.baseline.accuracy * 100,
    ),
  ],
  notes: [
    `digits, ${DEVICES} devices, ${ROUNDS} rounds, Dirichlet α = ${ALPHA}, seed ${SEED}; trimmed mean β = f/n in [0.1, 0.45], Multi-Krum f = attackers, m = n − f`,
    ...runs.map(([name]) => curve(name)),
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (2-core machine shared with other engineers)`,
  ],
});
