#!/usr/bin/env bash
# The conformance table (README's "Conformance" section, Benchmarks/CONFORMANCE.md): `tapecl check` on every
# OpenCL implementation this machine has, over seeds 1-3: the op table (forward, gradient, second order on
# random shapes), then special values and the integer and bool dtypes. Oclgrind runs through its wrapper
# (the only platform it then sees). `make conformance` runs this with Intel's runtime on the loader's path.
#
#   scripts/conformance.sh TAPECL     writes Benchmarks/CONFORMANCE.md and prints it
set -euo pipefail
cd "$(dirname "$0")/.."
tapecl=${1:-.build/release/tapecl}
out=$(mktemp -d /tmp/tapecl-conformance.XXXXXX)
for seed in 1 2 3; do
    "$tapecl" check --device all --seed "$seed" --json >"$out/native-$seed.json" || true
    if command -v oclgrind >/dev/null; then
        env -u OCL_ICD_FILENAMES oclgrind --data-races --check-api --log "$out/oclgrind-$seed.log" \
            "$tapecl" check --device opencl:0 --seed "$seed" --json >"$out/oclgrind-$seed.json" || true
    fi
done
python3 - "$out" "$(git rev-parse --short HEAD)" <<'PY' | tee Benchmarks/CONFORMANCE.md
import glob, json, os, sys
out, commit = sys.argv[1], sys.argv[2]
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    text = open(path).read().strip()
    if not text:
        continue
    reports = json.loads(text)
    reports = reports if isinstance(reports, list) else [reports]
    log = path.replace(".json", ".log")
    reports_logged = os.path.exists(log) and os.path.getsize(log) > 0
    for r in reports:
        key = r["implementation"]
        row = rows.setdefault(key, dict(device=r["device"], ops=0, ops_ok=0, special=0, special_ok=0,
                                        worst=0.0, worst_what="", bound=0.0, dtypes=set(), seeds=0, oclgrind=None))
        row["seeds"] += 1
        row["ops"] += len(r["ops"])
        row["ops_ok"] += sum(1 for o in r["ops"] if o["ok"])
        row["special"] += len(r["special_values"])
        row["special_ok"] += sum(1 for s in r["special_values"] if s["ok"])
        for s in r["special_values"]:
            row["dtypes"].update(w for w in s["what"].replace("→", " ").replace(",", " ").split()
                                 if w in ("float32", "float64", "int32", "int8", "bool"))
            if s["ok"] and (s.get("worst_ulps") or 0) > row["worst"]:
                row["worst"], row["worst_what"], row["bound"] = s["worst_ulps"], f'{s["op"]} {s["what"]}', s["bound_ulps"]
        if "oclgrind" in os.path.basename(path):
            row["oclgrind"] = (row["oclgrind"] or False) or reports_logged
print(f"# Conformance: every OpenCL implementation against the host (commit {commit})\n")
print("`make conformance`: `tapecl check` over seeds 1-3 on each implementation found. Ops: the op table on random")
print("shapes (forward, gradient, second order). Special values: every elementwise op at ±0, denormals, ±1e30, ±inf,")
print("NaN and saturated arguments (value and gradients, float32 and float64), and casts, comparisons, reductions,")
print("gather and select on int32, int8 and bool, exact. Bound: ulps of max(1, |host|); worst: the largest seen.\n")
print("| implementation | device | ops passed | special values and dtypes passed | dtypes | worst / bound (ulps) | Oclgrind reports |")
print("|---|---|---|---|---|---|---|")
for name, r in rows.items():
    grind = "-" if r["oclgrind"] is None else ("REPORTED" if r["oclgrind"] else "none")
    print(f'| {name} | {r["device"]} | {r["ops_ok"]} of {r["ops"]} | {r["special_ok"]} of {r["special"]} | '
          f'{", ".join(sorted(r["dtypes"]))} | {r["worst"]:.1f} / {r["bound"]:.0f} ({r["worst_what"]}) | {grind} |')
PY
