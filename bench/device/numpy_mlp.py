"""Reference for bench/device-training: one epoch of mini-batch Adam on the fraud MLP (30 -> 64 -> 32 -> 1, ReLU,
sigmoid head, binary cross-entropy) in plain numpy float32, written for this benchmark. Reads the data, the initial
weights and the batch order from the files the bench writes; prints JSON {seconds, loss} for the best of N epochs."""
import json
import sys
import time

import numpy as np

path, epochs = sys.argv[1], int(sys.argv[2])
meta = json.load(open(f"{path}/meta.json"))
rows, batch, lr = meta["rows"], meta["batch"], meta["lr"]
x = np.fromfile(f"{path}/x.f32", dtype=np.float32).reshape(rows, 30)
y = np.fromfile(f"{path}/y.f32", dtype=np.float32).reshape(rows, 1)
order = np.fromfile(f"{path}/order.u32", dtype=np.uint32)
flat = np.fromfile(f"{path}/w.f32", dtype=np.float32)
shapes = [(30, 64), (64,), (64, 32), (32,), (32, 1), (1,)]


def init():
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[at : at + n].reshape(s).copy())
        at += n
    return out


def epoch(params):
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    t, total, n = 0, 0.0, 0
    for start in range(0, rows, batch):
        idx = order[start : start + batch]
        xb, yb = x[idx], y[idx]
        k = len(idx)
        w0, c0, w1, c1, w2, c2 = params
        h0 = np.maximum(xb @ w0 + c0, 0)
        h1 = np.maximum(h0 @ w1 + c1, 0)
        p = 1 / (1 + np.exp(-(h1 @ w2 + c2)))
        total += float(-np.mean(yb * np.log(np.maximum(p, 1e-12)) + (1 - yb) * np.log(np.maximum(1 - p, 1e-12))))
        n += 1
        d2 = (p - yb) / k
        g = [None] * 6
        g[4], g[5] = h1.T @ d2, d2.sum(0)
        d1 = (d2 @ w2.T) * (h1 > 0)
        g[2], g[3] = h0.T @ d1, d1.sum(0)
        d0 = (d1 @ w1.T) * (h0 > 0)
        g[0], g[1] = xb.T @ d0, d0.sum(0)
        t += 1
        step = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for i in range(6):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            params[i] -= (step * m[i] / (np.sqrt(v[i]) + eps * np.sqrt(1 - b2**t))).astype(np.float32)
    return total / n


best, loss = float("inf"), None
for _ in range(epochs):
    params = init()
    started = time.perf_counter()
    loss = epoch(params)
    best = min(best, time.perf_counter() - started)
print(json.dumps({"seconds": best, "loss": loss}))
