"""Shared by the peer benchmarks: sizes, timing and output exactly as `tapecl bench --json`.

The workloads are defined in ../../../shared/bench/WORKLOADS.md (and in TapeCL's
Sources/TapeCL/Bench/Workloads.swift); each peer script implements the same six.
"""
import json
import math
import os
import resource
import statistics
import sys
import time

SIZES = {"W1": (1000, 1000), "W2": (256, 32), "W3": (1024, 256), "W4": (1 << 24, 1 << 18), "W5": (1 << 22, 1 << 16),
         "W6": (32, 4)}
FIGURES = {"W1": "µs/op", "W2": "ms/step", "W3": "GFLOP/s", "W4": "ms", "W5": "MiB peak", "W6": "GFLOP/s"}
NAMES = {"W1": "chain", "W2": "mlp", "W3": "matmul", "W4": "elementwise", "W5": "memory", "W6": "conv"}


def random_normal(shape, seed, stddev=1.0):
    """`Tensor.randomNormal(shape:stddev:seed:)` exactly: SplitMix64, Box–Muller in float64, then float32."""
    import numpy as np
    n = math.prod(shape)
    m = n + n % 2
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, m + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    u1, u2 = np.maximum(u[0::2], 2.2250738585072014e-308), u[1::2]
    r = np.sqrt(-2 * np.log(u1))
    v = np.empty(m)
    v[0::2], v[1::2] = r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
    return (stddev * v[:n]).astype(np.float32).reshape(shape)


def args():
    quick = "--quick" in sys.argv
    chosen = [a for a in sys.argv[1:] if a.upper() in SIZES] or list(SIZES)
    return [a.upper() for a in chosen], quick


def timed(fn, warmups, reps):
    for _ in range(warmups):
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def report(peer, workload, size, samples, **extra):
    out = {"workload": workload, "name": NAMES[workload], "device": peer, "size": size, "figure": FIGURES[workload],
           "median": statistics.median(samples), "min": min(samples), "max": max(samples), "reps": len(samples)}
    out.update(extra)
    print(json.dumps(out), flush=True)
