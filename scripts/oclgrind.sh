#!/usr/bin/env bash
# Oclgrind, the third OpenCL implementation of `make test`: a simulated device that reports itself as a
# GPU, so TapeCL runs its GPU kernel variants (32×32 local-memory matmul tiles) on it. Run with
# --data-races --check-api, it reports out-of-bounds accesses, data races in local and global memory,
# barrier divergence and API misuse; any report, any mismatch and any host fallback fails this script.
# (Its --uninitialized plugin aborts on LLVM's `freeze` in TapeCL's reductions: left out.)
#
#   1. `tapecl check` (every op of the table, forward, backward, second order, special values) over
#      seeds 1-3;
#   2. a subset of the test suite whose device-parameterized tests then run on Oclgrind alone: the
#      edge cases, images, selection and indexing suites (small shapes: Oclgrind is ~50× slower), one
#      test at a time: run in parallel, 4 of 30 runs aborted with heap corruption or gave wrong values inside
#      Oclgrind's runtime (no such failure in the whole suite run in parallel on PoCL and Intel's runtime;
#      11 of 11 serial runs passed).
#
# Needs the release `tapecl` and the debug test bundle (`make test` builds both first).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v oclgrind >/dev/null || {
    echo "oclgrind-check: oclgrind is not installed (make deps installs Debian's oclgrind)" >&2
    exit 1
}
tapecl=.build/release/tapecl
tests=.build/debug/TapeCLPackageTests.xctest
for f in "$tapecl" "$tests"; do
    [ -x "$f" ] || { echo "oclgrind-check: $f is not built (make test builds it)" >&2; exit 1; }
done
logs=$(mktemp -d /tmp/tapecl-oclgrind.XXXXXX)
# Oclgrind's wrapper preloads its runtime, which then is the only platform: no other ICD may answer.
unset OCL_ICD_FILENAMES
export TAPECL_EXPECT_OPENCL=Oclgrind

# Runs "$@" under Oclgrind; fails on a non-zero exit or on anything in Oclgrind's log.
under_oclgrind() {
    local name=$1
    shift
    local start=$SECONDS status=0
    oclgrind --data-races --check-api --log "$logs/$name.log" "$@" >"$logs/$name.out" 2>&1 || status=$?
    if [ "$status" -ne 0 ] || [ -s "$logs/$name.log" ]; then
        echo "oclgrind-check: $name FAILED (exit $status); Oclgrind's reports ($logs/$name.log):" >&2
        head -n 40 "$logs/$name.log" >&2 || true
        echo "--- its output ($logs/$name.out), last lines:" >&2
        tail -n 40 "$logs/$name.out" >&2
        exit 1
    fi
    echo "oclgrind-check: $name: $(grep -E 'ops match the host|comparisons agree|Test run with' "$logs/$name.out" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ')" \
        "($((SECONDS - start)) s, no Oclgrind report)"
}

device=$(oclgrind "$tapecl" devices | awk '$1 == "*" && $2 ~ /^opencl/ { $1 = ""; print; exit }')
case "$device" in
*Oclgrind*) echo "oclgrind-check: device under test:$device" ;;
*) echo "oclgrind-check: Oclgrind's device was not found (the default device is '$device')" >&2; exit 1 ;;
esac
for seed in 1 2 3; do
    under_oclgrind "check-seed-$seed" "$tapecl" check --device opencl:0 --seed "$seed"
done
under_oclgrind "tests" "$tests" --testing-library swift-testing --no-parallel \
    --filter "EdgeCaseTests|ImplementationTests|ImageTests|SelectionTests|IndexingTests"
