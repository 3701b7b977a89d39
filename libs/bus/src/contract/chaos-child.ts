// A consumer in its own process for the chaos scenarios: `kill-after N` appends each handled event id to a file
// (synchronously, as a handler with effects would) and SIGKILLs itself right after the Nth, before the bus commits;
// `kill-on VALUE` SIGKILLs itself when it meets a record with that value; `inbox-kill-after N` writes each effect
// through a SqliteInbox in the file (a SQLite database) and SIGKILLs itself right after the Nth inbox transaction.
// Subscribe options come as JSON.
import { appendFileSync } from 'node:fs';
import { createBus, type BusConfig } from '../config.js';
import { SqliteInbox } from '../inbox.js';
import type { SubscribeOptions } from '../port.js';

const [configJson, group, topic, mode, arg, file, optionsJson] = process.argv.slice(2);
const bus = await createBus(JSON.parse(configJson!) as BusConfig);
const extra = JSON.parse(optionsJson ?? '{}') as Partial<SubscribeOptions>;
let handled = 0;
const inbox = mode === 'inbox-kill-after' ? new SqliteInbox(file!) : null;
inbox?.db.exec('CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL)');
await bus.subscribe({
  ...extra,
  group: group!,
  topics: [topic!],
  fromBeginning: true,
  handler: async (record) => {
    if (inbox) {
      await inbox.run(group!, record, (db) => {
        db.prepare('INSERT INTO effects (event_id) VALUES (?)').run(record.eventId);
      });
      if (++handled === Number(arg)) process.kill(process.pid, 'SIGKILL');
      return;
    }
    if (mode === 'kill-on' && record.value.toString() === arg) process.kill(process.pid, 'SIGKILL');
    appendFileSync(file!, `${record.eventId}\n`);
    if (mode === 'kill-after' && ++handled === Number(arg)) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('subscribed\n');
