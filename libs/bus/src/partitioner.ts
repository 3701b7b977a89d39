// Kafka's default partitioner (Java client DefaultPartitioner / kafkajs Partitioners.DefaultPartitioner):
// partition = toPositive(murmur2(keyBytes)) % numPartitions. Written here (20 lines) rather than imported from
// kafkajs so the embedded adapter does not pull the Kafka client; partitioner.spec.ts checks it against kafkajs.

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 (32-bit, seed 0x9747b28c) of a byte string, as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  // The reference switch falls through from 3 to 1; written as ifs (the repo forbids switch fallthrough).
  if (rest >= 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner picks for a (UTF-8) key. */
export function partitionForKey(key: string | Uint8Array, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/**
 * The partition of each published record, as both adapters place them: a keyed record by partitionForKey (so a
 * key's records stay in order), a record without a key round-robin per topic, starting at a random partition so
 * that producers do not all begin on partition 0. One instance per bus (it keeps the round-robin position).
 */
export class PartitionChooser {
  private readonly roundRobin = new Map<string, number>();

  partitionOf(topic: string, key: string | null, partitions: number): number {
    if (key !== null) return partitionForKey(key, partitions);
    const n = (this.roundRobin.get(topic) ?? Math.floor(Math.random() * partitions)) + 1;
    this.roundRobin.set(topic, n);
    return n % partitions;
  }
}
