// Publishes `count` records in small batches to an embedded bus file from its own process (multi-process test).
import { EmbeddedBus } from '../embedded-bus.js';

const [path, topic, who, countText] = process.argv.slice(2);
const bus = new EmbeddedBus({ path: path!, retentionCheckIntervalMs: 0 });
const count = Number(countText);
for (let i = 0; i < count; i += 10) {
  const batch = [];
  for (let j = i; j < Math.min(count, i + 10); j++)
    batch.push({ topic: topic!, key: `${who}-${j % 4}`, value: Buffer.from(`${who}:${j}`) });
  await bus.publish(batch);
}
await bus.close();
process.stdout.write('done\n');
