#!/usr/bin/env bash
# The on-device half of the GPU check (see scripts/device-check.sh): unpacks the bundle, points
# the bundled OpenCL loader at the machine's driver and runs tapecl's checks and benchmarks,
# writing every result under $OUT (default ./device-out), which is what comes back.
#
# Environment:
#   OPENCL_ICD   the vendor OpenCL library (default: NVIDIA's libnvidia-opencl.so.1, searched for)
#   DEVICE       the device to check (default opencl:gpu)
#   BENCH_FLAGS  extra flags for tapecl bench (--quick for a local run)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./device-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DEVICE=${DEVICE:-opencl:gpu}
log="$OUT/device-run.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }

work=$(mktemp -d /tmp/tapecl-device.XXXXXX)
xz -dc .device-bundle/tapecl-bundle.tar.xz | tar -C "$work" -xf - || { say "cannot unpack .device-bundle"; exit 1; }

icd=${OPENCL_ICD:-}
if [ -z "$icd" ]; then
    for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
        if [ -e "$dir/libnvidia-opencl.so.1" ]; then icd="$dir/libnvidia-opencl.so.1"; break; fi
    done
    [ -n "$icd" ] || icd=$(ldconfig -p 2>/dev/null | awk '$1 == "libnvidia-opencl.so.1" && !found { print $NF; found = 1 }')
fi
[ -n "$icd" ] || { say "no OpenCL driver library found (libnvidia-opencl.so.1)"; exit 1; }
say "OpenCL library: $icd"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$log" 2>&1 || true

# A clean environment: only what tapecl needs. OCL_ICD_VENDORS stays unset (set to an empty folder
# it hid the platform); the caches need a writable home (PoCL drops its device without one).
home="$work/home"
mkdir -p "$home"
tapecl() {
    env -i PATH=/usr/bin:/bin HOME="$home" XDG_CACHE_HOME="$home/.cache" TAPECL_CACHE_DIR="$home/tapecl-cache" \
        LD_LIBRARY_PATH="$work/lib" OCL_ICD_FILENAMES="$icd" TAPECL_QUIET=1 "$work/bin/tapecl" "$@"
}

status=0
step() {   # step NAME COMMAND...: runs a tapecl command, its output in $OUT/NAME.txt
    local name=$1
    shift
    local start=$SECONDS
    tapecl "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    say "$name: exit $rc, $((SECONDS - start)) s (tapecl $*)"
    [ $rc -eq 0 ] || status=1
}

step devices devices
step devices-json devices --json
step check check --device "$DEVICE" --json
step seeds grad "(x+y)^2 + 2*x*y" --at x=2 --at y=-4 --order 2 --device "$DEVICE" --json
step train train --epochs 3 --device "$DEVICE" --json
step bench bench W1 W2 W3 W4 W5 W6 ${BENCH_FLAGS:-} --device "$DEVICE" --json
rm -rf "$work"
say "device-run: $([ $status -eq 0 ] && echo "all steps passed" || echo "SOME STEPS FAILED"); results in $OUT"
exit $status
