#!/usr/bin/env python3
"""`make bench`: TapeCL (host and every OpenCL device) and the peers on W1–W6, alternating.

Each round runs every workload once per runner, in turn, so machine noise falls on all of them
alike; a runner's figure is the median over rounds of its per-run medians. Prints one table with
ratios TapeCL/peer and regenerates Benchmarks/RESULTS.md (never edit that file by hand).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6"]
HIGHER_IS_BETTER = {"W3", "W6"}
# Goals as ratios TapeCL / PyTorch measured in the same run (issues 16 and 18): (host, OpenCL CPU device).
GOALS = {"W1": (1 / 15, 0.5), "W2": (0.8, 1.0), "W3": (1.0, 0.6), "W4": (0.33, 0.2), "W5": (1.0, 1.0), "W6": (0.7, 0.4)}
ENV = dict(os.environ, OMP_NUM_THREADS="2", POCL_MAX_PTHREAD_COUNT="2", TF_CPP_MIN_LOG_LEVEL="2")


def run(command):
    out = subprocess.run(command, env=ENV, capture_output=True, text=True, cwd=PEERS)
    if out.returncode != 0:
        sys.exit(f"benchmark failed: {' '.join(command)}\n{out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tapecl", required=True)
    parser.add_argument("--python", default=os.path.join(PEERS, ".venv", "bin", "python"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("workloads", nargs="*", default=WORKLOADS)
    a = parser.parse_args()
    a.tapecl = os.path.abspath(a.tapecl)
    quick = ["--quick"] if a.quick else []
    devices = [d["name"] for d in json.loads(subprocess.check_output([a.tapecl, "devices", "--json"], env=ENV))]
    runners = {f"TapeCL {d}": [a.tapecl, "bench", "--json", "--device", d] + quick for d in devices}
    runners["PyTorch"] = [a.python, "torch_workloads.py"] + quick
    runners["TensorFlow"] = [a.python, "tf_workloads.py"] + quick
    results = {}   # (runner, workload) -> [record per round]
    for r in range(a.rounds):
        for w in a.workloads:
            for name, command in runners.items():
                print(f"round {r + 1}/{a.rounds} {w} {name}", file=sys.stderr, flush=True)
                for rec in run(command + [w]):
                    results.setdefault((name, w), []).append(rec)

    versions = {}
    for rec_list in results.values():
        dev = rec_list[0]["device"]
        if dev.startswith(("pytorch", "tensorflow")):
            versions[dev.split("-")[0]] = dev.split("-", 1)[1]
    lines = []
    header = f"| workload | figure | size | {' | '.join(runners)} | " + " | ".join(
        f"{t}/{p}" for t in runners if t.startswith("TapeCL") for p in ("PyTorch", "TensorFlow")) + " |"
    lines.append(header)
    lines.append("|" + "---|" * (header.count("|") - 1))
    for w in a.workloads:
        med = {}
        cells = []
        for name in runners:
            recs = results.get((name, w), [])
            if not recs:
                cells.append("-")
                continue
            m = statistics.median(r["median"] for r in recs)
            lo, hi = min(r["min"] for r in recs), max(r["max"] for r in recs)
            med[name] = m
            cells.append(f"{m:.4g} ({lo:.3g}–{hi:.3g})")
        first = next(iter(results.get((next(iter(runners)), w), [{}])), {})
        ratios = [f"{med[t] / med[p]:.2f}" if t in med and p in med else "-"
                  for t in runners if t.startswith("TapeCL") for p in ("PyTorch", "TensorFlow")]
        lines.append(f"| {w} {first.get('name', '')} | {first.get('figure', '')} | {first.get('size', '')} | "
                     + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    goal_lines = ["| workload | device | TapeCL / PyTorch | goal | met |", "|---|---|---|---|---|"]
    for w in a.workloads:
        if w not in GOALS:
            continue
        peer = [statistics.median(r["median"] for r in results[("PyTorch", w)])] if ("PyTorch", w) in results else []
        for name in runners:
            if not name.startswith("TapeCL") or (name, w) not in results or not peer:
                continue
            ratio = statistics.median(r["median"] for r in results[(name, w)]) / peer[0]
            goal = GOALS[w][0 if name.endswith("host") else 1]
            met = ratio >= goal if w in HIGHER_IS_BETTER else ratio <= goal
            sign = ">=" if w in HIGHER_IS_BETTER else "<="
            goal_lines.append(f"| {w} | {name[7:]} | {ratio:.3f} | {sign} {goal:.3g} | {'yes' if met else 'no'} |")
    goals = "\n".join(goal_lines)
    print(goals)
    checks = []
    for (name, w), recs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        extra = {k: v for k, v in recs[-1].items()
                 if k not in ("workload", "name", "device", "size", "figure", "median", "min", "max", "reps")}
        if extra:
            checks.append(f"| {w} | {name} | " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items()) + " |")
    table = "\n".join(lines)
    print(table)
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    doc = f"""# Benchmark results

Generated by `make bench` (Benchmarks/run.py) on {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; do not edit by hand.

- Machine: {cpu}, {os.cpu_count()} cores; every runner limited to 2 threads (OMP_NUM_THREADS=2, POCL_MAX_PTHREAD_COUNT=2, torch.set_num_threads(2), TF intra/inter 2/1).
- Versions: {swift[0] if swift else 'swift'}; TapeCL at {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=HERE).stdout.strip()}; """ + "; ".join(f"{k} {v}" for k, v in versions.items()) + f"""; devices {', '.join(devices)}.
- Workloads: ../shared/bench/WORKLOADS.md{' (quick sizes)' if a.quick else ''}. {a.rounds} rounds, alternating runners; each cell is the median over rounds of each run's median (min–max over all repetitions). Ratios are TapeCL's figure over the peer's: below 1 is better for times (W1, W2, W4, W5), above 1 for GFLOP/s (W3, W6).
- W5 for TapeCL is its peak live tensor bytes (device memory accounting); for the peers, the growth of the process's peak resident memory over the run (PyTorch and TensorFlow do not count live CPU tensor bytes).
- All runners use identical data (TapeCL's SplitMix64 normal generator, reproduced in peers/common.py), so the checks below agree.

{table}

## Goals (ratios to PyTorch in this run)

{goals}

## Checks and extras (last round)

| workload | runner | values |
|---|---|---|
""" + "\n".join(checks) + "\n"
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(doc)
    print(f"wrote {os.path.join(HERE, 'RESULTS.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
