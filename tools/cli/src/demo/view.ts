import cliProgress from 'cli-progress';
import Table from 'cli-table3';

/** One row of the status table: what the demo knows of a round. */
export interface RoundStatus {
  round: number;
  participants: number;
  selected: number;
  accuracy: number | null;
  epsilon: number | null;
  stage: string;
  mix: Readonly<Record<string, number>>;
}

/** What the demo reports as it runs; the terminal view or plain lines. */
export interface DemoView {
  /** A phase of the run (booting, fleet starting, …) with its progress. */
  phase(name: string, done: number, total: number): void;
  /** The status of a round (updated as it trains, aggregates and rolls out). */
  round(status: RoundStatus): void;
  line(text: string): void;
  stop(): void;
}

const percent = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
const mixText = (mix: Readonly<Record<string, number>>) =>
  Object.entries(mix)
    .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
    .map(([v, n]) => `${v}:${n}`)
    .join(' ');

/** The status table (cli-table3) of every round so far. */
export function statusTable(rounds: readonly RoundStatus[]): string {
  const table = new Table({
    head: ['round', 'participants', 'accuracy', 'ε spent', 'rollout stage', 'fleet version mix'],
    style: { head: [], border: [] },
  });
  for (const r of rounds)
    table.push([
      String(r.round),
      `${r.participants}/${r.selected}`,
      percent(r.accuracy),
      r.epsilon === null ? '–' : r.epsilon.toFixed(3),
      r.stage,
      mixText(r.mix),
    ]);
  return table.toString();
}

/**
 * The live view on a terminal: cli-progress bars (the current phase, and each round's updates and installs) above a
 * cli-table3 status table redrawn in place. Off a terminal (CI, a pipe, a file) it prints plain lines instead: one
 * per phase change and one per round state change, nothing redrawn.
 */
export function createView(stream: NodeJS.WriteStream, interactive = stream.isTTY === true): DemoView {
  return interactive ? new TerminalView(stream) : new PlainView(stream);
}

class PlainView implements DemoView {
  #lastPhase = '';
  #lastRound = new Map<number, string>();
  constructor(private readonly out: NodeJS.WritableStream) {}
  phase(name: string, done: number, total: number): void {
    // one line when a phase starts and one when it is done, not one per step
    const key = `${name}:${done === total ? 'done' : 'running'}`;
    if (key === this.#lastPhase) return;
    this.#lastPhase = key;
    this.out.write(`edgefl demo: ${name} ${done}/${total}\n`);
  }
  round(s: RoundStatus): void {
    const text = `round ${s.round}: ${s.participants}/${s.selected} updates, accuracy ${percent(s.accuracy)}, ε ${
      s.epsilon === null ? '–' : s.epsilon.toFixed(3)
    }, rollout ${s.stage}, fleet ${mixText(s.mix)}`;
    if (this.#lastRound.get(s.round) === text) return;
    this.#lastRound.set(s.round, text);
    this.out.write(`edgefl demo: ${text}\n`);
  }
  line(text: string): void {
    this.out.write(`edgefl demo: ${text}\n`);
  }
  stop(): void {}
}

class TerminalView implements DemoView {
  readonly #bars: cliProgress.MultiBar;
  readonly #phase: cliProgress.SingleBar;
  #rounds: RoundStatus[] = [];
  #table: cliProgress.SingleBar | null = null;
  constructor(private readonly out: NodeJS.WriteStream) {
    this.#bars = new cliProgress.MultiBar(
      {
        stream: out,
        clearOnComplete: false,
        hideCursor: true,
        format: ' {bar} {value}/{total} {name}',
        barsize: 30,
        forceRedraw: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#phase = this.#bars.create(1, 0, { name: 'starting' });
  }
  phase(name: string, done: number, total: number): void {
    this.#phase.setTotal(Math.max(1, total));
    this.#phase.update(done, { name });
  }
  round(s: RoundStatus): void {
    const i = this.#rounds.findIndex((r) => r.round === s.round);
    if (i >= 0) this.#rounds[i] = s;
    else this.#rounds.push(s);
    // the table is drawn as the last "bar" of the multibar, so cli-progress redraws it in place with the bars
    this.#table ??= this.#bars.create(1, 0, { table: '' }, { format: '{table}' });
    this.#table.update(0, { table: statusTable(this.#rounds) });
  }
  line(text: string): void {
    this.#bars.log(`${text}\n`);
  }
  stop(): void {
    this.#bars.stop();
    this.out.write('\n');
  }
}
