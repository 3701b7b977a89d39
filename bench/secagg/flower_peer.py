"""Times Flower's SecAgg+ primitives on the shape of bench/secagg.bench.ts — its peer.

Usage: FLOWER_SRC=<flower checkout> python3 bench/secagg/flower_peer.py <n> <d> <k> <t> <drop_fraction> <sample>
       <server_sample> <seed>

Flower's modules (flwr/common/secure_aggregation/*, flwr/supercore/primitives/asymmetric.py)
are loaded from $FLOWER_SRC at run time (flwr/common/typing.py is stubbed by the two numpy aliases they use); no Flower code lives in this repository. They are driven in the order
Flower's secaggplus_mod (client) and SecAggPlusWorkflow (server) call them, with Flower's defaults (clipping range
1.0 = our bound, quantization range 2^22, modulus 2^32), num_shares = k + 1 and the ring of neighbours Flower builds.
Client time: the mean over `sample` clients of every client-side primitive of the four stages. Server time: summing
the survivors' masked vectors, reconstructing every secret (combine_shares) and removing the masks, as the workflow
does; the masked vectors themselves are random int64 arrays of the right shape (their values do not change the cost).
pycryptodome's Shamir combine is slow in pure Python, so the per-owner unmasking (one combine and one PRG per
survivor; one combine, k key agreements and k PRGs per dropped client) is timed on up to `server_sample` owners of
each kind and scaled to all of them (each owner costs the same: same share count, same shapes); the output says
how many were timed.
Flower's Shamir needs pycryptodome; Debian's python3-pycryptodome installs it as Cryptodome, which is aliased (its
directory may be appended with SECAGG_PEER_PYTHONPATH). Prints one JSON object.
"""

import json
import os
import random
import sys
import time
import types

import numpy as np


def alias_pycryptodome():
    try:
        import Crypto.Protocol.SecretSharing  # noqa: F401
        return
    except ImportError:
        pass
    extra = os.environ.get("SECAGG_PEER_PYTHONPATH")
    if extra:
        sys.path.extend(extra.split(os.pathsep))
    import Cryptodome
    import Cryptodome.Protocol.SecretSharing
    import Cryptodome.Util.Padding

    sys.modules["Crypto"] = Cryptodome
    sys.modules["Crypto.Protocol"] = Cryptodome.Protocol
    sys.modules["Crypto.Protocol.SecretSharing"] = Cryptodome.Protocol.SecretSharing
    sys.modules["Crypto.Util"] = Cryptodome.Util
    sys.modules["Crypto.Util.Padding"] = Cryptodome.Util.Padding


def load(root, dotted, relpath):
    candidates = [os.path.join(root, relpath), os.path.join(root, "framework", "py", relpath)]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise SystemExit(f"no {relpath} under {root}")
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    module = types.ModuleType(dotted)
    sys.modules[dotted] = module
    with open(path, encoding="utf8") as fh:
        exec(compile(fh.read(), path, "exec"), module.__dict__)
    return module


def main():
    n, d, k, t = (int(a) for a in sys.argv[1:5])
    drop, sample, server_sample, seed = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
    alias_pycryptodome()
    root = os.environ["FLOWER_SRC"]
    # flwr.common.typing pulls in the whole framework; the modules timed here need two numpy aliases from it
    typing_stub = types.ModuleType("flwr.common.typing")
    typing_stub.NDArrayInt = np.ndarray
    typing_stub.NDArrayFloat = np.ndarray
    for name in ("flwr", "flwr.common"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["flwr.common.typing"] = typing_stub
    asym = load(root, "flwr.supercore.primitives.asymmetric", "flwr/supercore/primitives/asymmetric.py")
    shamir = load(root, "flwr.common.secure_aggregation.crypto.shamir", "flwr/common/secure_aggregation/crypto/shamir.py")
    sym = load(
        root,
        "flwr.common.secure_aggregation.crypto.symmetric_encryption",
        "flwr/common/secure_aggregation/crypto/symmetric_encryption.py",
    )
    arith = load(
        root, "flwr.common.secure_aggregation.ndarrays_arithmetic", "flwr/common/secure_aggregation/ndarrays_arithmetic.py"
    )
    quant = load(root, "flwr.common.secure_aggregation.quantization", "flwr/common/secure_aggregation/quantization.py")
    utils = load(root, "flwr.common.secure_aggregation.secaggplus_utils", "flwr/common/secure_aggregation/secaggplus_utils.py")

    clip, target, mod = 1.0, 1 << 22, 1 << 32
    num_shares = k + 1
    rng = random.Random(seed)
    nids = list(range(1, n + 1))
    order = nids[:]
    rng.shuffle(order)
    half = num_shares >> 1
    neighbours = {
        nid: {order[(i + off) % n] for off in range(-half, half + 1)} for i, nid in enumerate(order)
    }
    dropped = set(rng.sample(nids, round(drop * n)))
    active = [nid for nid in nids if nid not in dropped]
    np_rng = np.random.default_rng(seed)

    # --- every client's keys, seeds and shares (the server needs them); not timed
    keys = {}
    for nid in nids:
        sk1, pk1 = asym.generate_key_pairs()
        sk2, pk2 = asym.generate_key_pairs()
        keys[nid] = (asym.private_key_to_bytes(sk1), asym.public_key_to_bytes(pk1),
                     asym.private_key_to_bytes(sk2), asym.public_key_to_bytes(pk2))

    def client(nid, params):
        """One client's four stages, as secaggplus_mod runs them; returns its bytes sent and received."""
        sent = received = 0
        # stage 0: setup
        sk1, pk1 = asym.generate_key_pairs()
        sk2, pk2 = asym.generate_key_pairs()
        sk1b, pk1b = asym.private_key_to_bytes(sk1), asym.public_key_to_bytes(pk1)
        sk2b, pk2b = asym.private_key_to_bytes(sk2), asym.public_key_to_bytes(pk2)
        sent += len(pk1b) + len(pk2b)
        # stage 1: share keys (neighbours' public keys as the server relays them)
        peers = {v: (keys[v][1], keys[v][3]) for v in neighbours[nid] if v != nid}
        peers[nid] = (pk1b, pk2b)
        received += sum(len(a) + len(b) for a, b in peers.values())
        rd_seed = os.urandom(32)
        b_shares = shamir.create_shares(rd_seed, t, num_shares)
        sk1_shares = shamir.create_shares(sk1b, t, num_shares)
        ss2 = {}
        for idx, (v, (_, vpk2)) in enumerate(peers.items()):
            if v == nid:
                continue
            key = sym.generate_shared_key(asym.bytes_to_private_key(sk2b), asym.bytes_to_public_key(vpk2))
            ss2[v] = key
            ct = sym.encrypt(key, utils.share_keys_plaintext_concat(nid, v, b_shares[idx], sk1_shares[idx]))
            sent += len(ct) + 8
        # stage 2: collect masked vectors (the ciphertexts other clients sent it: same sizes as its own)
        for v, key in ss2.items():
            ct = sym.encrypt(key, utils.share_keys_plaintext_concat(v, nid, b_shares[0], sk1_shares[0]))
            received += len(ct) + 8
            utils.share_keys_plaintext_separate(sym.decrypt(key, ct))
        q = quant.quantize(params, clip, target)
        q = arith.factor_combine(target, q)
        dims = [a.shape for a in q]
        q = arith.parameters_addition(q, utils.pseudo_rand_gen(rd_seed, mod, dims))
        for v in ss2:
            shared = sym.generate_shared_key(asym.bytes_to_private_key(sk1b), asym.bytes_to_public_key(peers[v][0]))
            mask = utils.pseudo_rand_gen(shared, mod, dims)
            q = arith.parameters_addition(q, mask) if nid > v else arith.parameters_subtraction(q, mask)
        q = arith.parameters_mod(q, mod)
        from io import BytesIO

        for arr in q:
            bio = BytesIO()
            np.save(bio, arr, allow_pickle=False)
            sent += len(bio.getvalue())
        # stage 3: unmask (lists of ids in, shares out)
        received += 8 * len(neighbours[nid]) * 2
        sent += sum(len(s) for s in b_shares[: len(neighbours[nid])]) + 8 * len(neighbours[nid])
        return sent, received

    client_times, client_bytes = [], []
    for nid in active[:sample]:
        params = [np_rng.uniform(-1, 1, d).astype(np.float32)]
        t0 = time.perf_counter()
        sent, received = client(nid, params)
        client_times.append(time.perf_counter() - t0)
        client_bytes.append((sent, received))

    # --- the server's unmasking: shares from each owner's surviving neighbours
    rd_seeds = {nid: os.urandom(32) for nid in nids}
    timed_active = active[:server_sample]
    timed_dropped = sorted(dropped)[:server_sample]
    collected = {}
    for nid in timed_active + timed_dropped:
        owner_is_active = nid not in dropped
        secret = rd_seeds[nid] if owner_is_active else keys[nid][0]
        shares = shamir.create_shares(secret, t, num_shares)
        holders = sorted(neighbours[nid])
        collected[nid] = [shares[i] for i, h in enumerate(holders) if h not in dropped]
    vectors = [
        [np_rng.integers(0, mod, 1, dtype=np.int64), np_rng.integers(0, mod, d, dtype=np.int64)] for _ in active
    ]
    dims = [(1,), (d,)]
    t0 = time.perf_counter()
    masked = vectors[0]
    for v in vectors[1:]:
        masked = arith.parameters_addition(masked, v)
    fixed = time.perf_counter() - t0
    per_owner = {True: 0.0, False: 0.0}
    for nid, share_list in collected.items():
        if len(share_list) < t:
            raise SystemExit(f"not enough shares for {nid}")
        t1 = time.perf_counter()
        secret = shamir.combine_shares(share_list)
        if nid not in dropped:
            masked = arith.parameters_subtraction(masked, utils.pseudo_rand_gen(secret, mod, dims))
        else:
            for v in neighbours[nid] - {nid}:
                shared = sym.generate_shared_key(asym.bytes_to_private_key(secret), asym.bytes_to_public_key(keys[v][1]))
                mask = utils.pseudo_rand_gen(shared, mod, dims)
                masked = arith.parameters_addition(masked, mask) if nid > v else arith.parameters_subtraction(masked, mask)
        per_owner[nid in dropped] += time.perf_counter() - t1
    t1 = time.perf_counter()
    recon = arith.parameters_mod(masked, mod)
    _, recon = arith.factor_extract(recon)
    quant.dequantize(recon, clip, target)
    fixed += time.perf_counter() - t1
    server_time = fixed
    if timed_active:
        server_time += per_owner[False] / len(timed_active) * len(active)
    if timed_dropped:
        server_time += per_owner[True] / len(timed_dropped) * len(dropped)

    print(
        json.dumps(
            {
                "clientSeconds": sum(client_times) / len(client_times),
                "clientSample": len(client_times),
                "serverSeconds": server_time,
                "serverTimedOwners": len(timed_active) + len(timed_dropped),
                "serverOwners": n,
                "bytesSent": sum(s for s, _ in client_bytes) / len(client_bytes),
                "bytesReceived": sum(r for _, r in client_bytes) / len(client_bytes),
            }
        )
    )


if __name__ == "__main__":
    main()
