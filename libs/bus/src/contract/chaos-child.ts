// A consumer in its own process for the chaos scenarios: `kill-after N` appends each handled event id to a file
// (synchronously, as a handler with effects would) and SIGKILLs itself right after the Nth, before the bus commits;
// `kill-on VALUE` SIGKILLs itself when it meets a record with that value. Subscribe options come as JSON.
import { appendFileSync } from 'node:fs';
import { createBus, type BusConfig } from '../config.js';
import type { SubscribeOptions } from '../port.js';

const [configJson, group, topic, mode, arg, file, optionsJson] = process.argv.slice(2);
const bus = await createBus(JSON.parse(configJson!) as BusConfig);
const extra = JSON.parse(optionsJson ?? '{}') as Partial<SubscribeOptions>;
let handled = 0;
await bus.subscribe({
  ...extra,
  group: group!,
  topics: [topic!],
  fromBeginning: true,
  handler: (record) => {
    if (mode === 'kill-on' && record.value.toString() === arg) process.kill(process.pid, 'SIGKILL');
    appendFileSync(file!, `${record.eventId}\n`);
    if (mode === 'kill-after' && ++handled === Number(arg)) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('subscribed\n');
