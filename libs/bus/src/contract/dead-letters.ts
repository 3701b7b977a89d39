// Contract-suite helper: the dead letters the bus wrote for one original topic, read from the dead-letter topic.
import { eventually } from '@edgefl/testing';
import { decodeJsonDeadLetter } from '../dead-letter.js';
import { DEAD_LETTER_TOPIC, type EventBus } from '../port.js';

/** Reads the dead-letter topic from the beginning until at least one letter for `topic` arrived (or `timeoutMs`). */
export async function readDeadLetters(
  bus: EventBus,
  group: string,
  topic: string,
  timeoutMs: number,
): Promise<ReturnType<typeof decodeJsonDeadLetter>[]> {
  const letters: ReturnType<typeof decodeJsonDeadLetter>[] = [];
  const dlq = await bus.subscribe({
    group: `${group}-dlq`,
    topics: [DEAD_LETTER_TOPIC],
    fromBeginning: true,
    handler: (r) => {
      if (r.headers['dlq-original-topic'] === topic) letters.push(decodeJsonDeadLetter(r.value));
    },
  });
  await eventually('the dead letter', () => letters.length >= 1, timeoutMs);
  await dlq.close();
  return letters;
}
