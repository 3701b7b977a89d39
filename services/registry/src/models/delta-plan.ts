/** One stored delta as the planner sees it. */
export interface DeltaEdge {
  fromVersion: number;
  toVersion: number;
  sizeBytes: number;
}

export type DeltaPlan =
  | { kind: 'none'; steps: []; totalBytes: 0 }
  | { kind: 'full'; steps: []; totalBytes: number }
  | { kind: 'direct' | 'chain'; steps: DeltaEdge[]; totalBytes: number };

/**
 * The cheapest way from `from` to `to`: a direct delta, a chain of deltas, or the full artifact, by bytes to
 * download (Dijkstra over the stored deltas; graphs are a few versions × the delta window, so a linear scan for the
 * next node is enough). `maxSteps` bounds a chain (each step costs the device an apply and a verify).
 */
export function planDelta(
  from: number,
  to: number,
  fullBytes: number,
  edges: readonly DeltaEdge[],
  maxSteps = 8,
): DeltaPlan {
  if (from === to) return { kind: 'none', steps: [], totalBytes: 0 };
  const best = new Map<number, { cost: number; steps: DeltaEdge[] }>([[from, { cost: 0, steps: [] }]]);
  const done = new Set<number>();
  for (;;) {
    let node: number | undefined;
    let nodeCost = Infinity;
    for (const [version, entry] of best) {
      if (!done.has(version) && entry.cost < nodeCost) {
        node = version;
        nodeCost = entry.cost;
      }
    }
    if (node === undefined || node === to || nodeCost >= fullBytes) break;
    done.add(node);
    const here = best.get(node)!;
    if (here.steps.length >= maxSteps) continue;
    for (const edge of edges) {
      if (edge.fromVersion !== node || done.has(edge.toVersion)) continue;
      const cost = here.cost + edge.sizeBytes;
      const known = best.get(edge.toVersion);
      if (!known || cost < known.cost) best.set(edge.toVersion, { cost, steps: [...here.steps, edge] });
    }
  }
  const reached = best.get(to);
  if (!reached || reached.cost >= fullBytes) return { kind: 'full', steps: [], totalBytes: fullBytes };
  return {
    kind: reached.steps.length === 1 ? 'direct' : 'chain',
    steps: reached.steps,
    totalBytes: reached.cost,
  };
}
