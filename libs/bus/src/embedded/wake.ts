import { resolve } from 'node:path';

// In-process wake-ups: every EmbeddedBus on the same file in this process hears about each publish at once.
// Other processes' writes are found by polling (SQLite has no cross-process notification).
type Listener = (topics: ReadonlySet<string>) => void;
const listeners = new Map<string, Set<Listener>>();

export function onPublish(path: string, listener: Listener): () => void {
  const key = resolve(path);
  let set = listeners.get(key);
  if (!set) listeners.set(key, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0) listeners.delete(key);
  };
}

export function announcePublish(path: string, topics: ReadonlySet<string>): void {
  const set = listeners.get(resolve(path));
  if (set) for (const listener of set) listener(topics);
}
