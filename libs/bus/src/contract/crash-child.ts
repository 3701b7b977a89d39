// A consumer in its own process, for the crash test: it subscribes, prints `got <eventId>` when its handler starts
// on a record, and then never finishes that handler, so the parent can SIGKILL it mid-handler (before any commit).
import { createBus, type BusConfig } from '../config.js';

const [configJson, group, topic] = process.argv.slice(2);
const bus = await createBus(JSON.parse(configJson!) as BusConfig);
await bus.subscribe({
  group: group!,
  topics: [topic!],
  fromBeginning: true,
  handler: (record) => {
    process.stdout.write(`got ${record.eventId}\n`);
    return new Promise<void>(() => {}); // hangs until killed
  },
});
process.stdout.write('subscribed\n');
