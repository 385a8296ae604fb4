#!/usr/bin/env bash
# W2 data-parallel (issue 17): `mpirun -np 2 tapecl bench W2 --distributed` on the host and on the
# first OpenCL device, three runs each, alternating; each run measures, round by round, one process
# on the whole batch, each rank alone on its half, a bare allreduce of the gradients and the
# data-parallel step. Writes Benchmarks/RESULTS-distributed.md.
set -euo pipefail
cd "$(dirname "$0")/.."
tapecl=${1:-.build/release/tapecl}
out=Benchmarks/RESULTS-distributed.md
cores=$(nproc)
per_rank=$(( cores / 2 > 0 ? cores / 2 : 1 ))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export POCL_MAX_PTHREAD_COUNT=$per_rank OPENBLAS_NUM_THREADS=$per_rank
devices="host"
if "$tapecl" devices --json | grep '"opencl:0"' >/dev/null; then devices="host opencl:0"; fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "# W2 data-parallel over MPI"
    echo
    echo "\`make bench-distributed\` on $(date -u +%Y-%m-%d), $cpu, $cores cores; Open MPI $(mpirun --version | head -1 | awk '{print $NF}'),"
    echo "2 ranks, $per_rank PoCL/OpenBLAS thread(s) each. Figures are medians over 20 rounds of the slower rank."
    echo "Goal (issue 17): data-parallel step <= 1.1 x (one rank's step on its half + the bare allreduce)."
    echo
    echo "| run | device | one process, batch 256 (ms) | each rank on 128 (ms) | bare allreduce (ms) | data-parallel step (ms) | wait after walk (ms) | allreduce hidden | ratio | goal |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$out.tmp"
for run in 1 2 3; do
    for d in $devices; do
        mpirun -np 2 -x POCL_MAX_PTHREAD_COUNT -x OPENBLAS_NUM_THREADS "$tapecl" bench W2 --distributed --device "$d" --json |
            python3 -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
print("| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f%% | %.3f | %s |" % (sys.argv[1], r["device"], r["whole_batch_ms"],
      r["local_step_ms"], r["bare_allreduce_ms"], r["distributed_step_ms"], r["wait_after_walk_ms"],
      100 * r["hidden_fraction"], r["ratio"], "met" if r["goal_met"] else "not met"))' "$run" >> "$out.tmp"
    done
done
mv "$out.tmp" "$out"
cat "$out"
