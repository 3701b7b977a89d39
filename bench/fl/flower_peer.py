"""Times Flower's own aggregation functions on the bench input (.npz) — the peer of bench/fl-aggregate.bench.ts.

Usage: FLOWER_SRC=<flower checkout> python3 bench/fl/flower_peer.py <input.npz> <f> <m> <beta>
Flower's legacy aggregate.py is loaded from $FLOWER_SRC at run time (no Flower code lives in this repository);
its two flwr imports are stubbed, since the functions timed here use only numpy. Prints one JSON object of
seconds per function (FedAvg best of 3, the others one run each).
"""

import json
import os
import sys
import time
import types

import numpy as np


def load_flower_aggregate(root):
    candidates = [
        root,
        os.path.join(root, "framework", "py", "flwr", "server", "strategy", "aggregate.py"),
        os.path.join(root, "src", "py", "flwr", "server", "strategy", "aggregate.py"),
        os.path.join(root, "flwr", "server", "strategy", "aggregate.py"),
    ]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise SystemExit(f"no flwr/server/strategy/aggregate.py under {root}")
    common = types.ModuleType("flwr.common")
    common.FitRes = object
    common.NDArray = np.ndarray
    common.NDArrays = list
    common.parameters_to_ndarrays = lambda p: p
    proxy = types.ModuleType("flwr.server.client_proxy")
    proxy.ClientProxy = object
    for name in ("flwr", "flwr.server"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["flwr.common"] = common
    sys.modules["flwr.server.client_proxy"] = proxy
    module = types.ModuleType("flower_aggregate")
    with open(path, encoding="utf8") as fh:
        exec(compile(fh.read(), path, "exec"), module.__dict__)
    return module


def main():
    npz_path, f, m, beta = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    agg = load_flower_aggregate(os.environ["FLOWER_SRC"])
    data = np.load(npz_path)
    num_examples = data["num_examples"]
    n = len(num_examples)
    layers = int(data["layers"][0])
    results = [([data[f"c{i}_l{l}"] for l in range(layers)], int(num_examples[i])) for i in range(n)]
    times = {}

    def timed(name, fn, repeat=1):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        times[name] = best

    timed("fedavg", lambda: agg.aggregate(results), 3)  # best of 3, as the TypeScript side
    timed("median", lambda: agg.aggregate_median(results))
    timed("trimmed-mean", lambda: agg.aggregate_trimmed_avg(results, beta))
    timed("krum", lambda: agg.aggregate_krum(results, f, 0))
    timed("multi-krum", lambda: agg.aggregate_krum(results, f, m))
    print(json.dumps(times))


if __name__ == "__main__":
    main()
