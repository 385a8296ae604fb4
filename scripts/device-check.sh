#!/usr/bin/env bash
# Prepares the GPU check: a release `tapecl` (Swift runtime linked statically, stripped) and the
# shared libraries a bare GPU machine lacks (the ocl-icd loader, Open MPI's libraries, OpenBLAS with
# libgfortran and libquadmath), xz-compressed into .device-bundle/ (ignored by git; it travels with the working
# tree when named in `carry`). Then prints how to run scripts/device-run.sh on the GPU machine.
#
#   scripts/device-check.sh            prepare the bundle and print the device command
#   scripts/device-check.sh --local    prepare it and run the device part here, against PoCL
#                                      (PoCL's ICD in place of NVIDIA's; quick benchmark sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=.device-bundle
rm -rf "$bundle"
mkdir -p "$bundle/stage/bin" "$bundle/stage/lib"

swift build -c release --static-swift-stdlib --product tapecl
strip -o "$bundle/stage/bin/tapecl" .build/release/tapecl

# Every library the binary needs that is not part of glibc or libstdc++ (which any Linux has),
# and OpenBLAS (loaded with dlopen, so ldd does not list it) with its own dependencies.
copy_lib() {
    local name=$1 path
    # awk reads to the end: leaving early would kill ldconfig with SIGPIPE, which pipefail reports
    path=$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ && !found { print $NF; found = 1 }')
    [ -n "$path" ] || { echo "device-check: $name not found (make deps installs it)" >&2; exit 1; }
    cp -L "$path" "$bundle/stage/lib/$name"
}
# What ldd lists: the OpenCL loader, and Open MPI's libraries (the CLI links TapeCLDistributed; MPI
# itself is only initialised under mpirun, so the bundle needs no Open MPI plugins).
for name in $(ldd .build/release/tapecl | awk '/=>/ { print $1 }'); do
    case $name in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | libstdc++* | libgcc_s*) ;;
    *) copy_lib "$name" ;;
    esac
done
copy_lib libopenblas.so.0
copy_lib libgfortran.so.5
copy_lib libquadmath.so.0

tar -C "$bundle/stage" -cf - bin lib | xz -6 -T2 > "$bundle/tapecl-bundle.tar.xz"
rm -rf "$bundle/stage"
size=$(du -m "$bundle/tapecl-bundle.tar.xz" | cut -f1)
echo "device-check: $bundle/tapecl-bundle.tar.xz, ${size} MiB (what travels must stay under 64 MiB)"

if [ "${1:-}" = "--local" ]; then
    icd=$(ldconfig -p | awk '$1 ~ /^libpocl\.so/ && /x86-64/ && !found { print $NF; found = 1 }')
    [ -n "$icd" ] || { echo "device-check: PoCL is not installed (make deps installs it)" >&2; exit 1; }
    OUT=${OUT:-./device-out-local} OPENCL_ICD="$icd" DEVICE=opencl:0 BENCH_FLAGS=--quick \
        bash scripts/device-run.sh
    exit
fi

cat <<MSG
On the GPU machine (the device tool's run, with the bundle carried), about 5 minutes:
  command:  bash scripts/device-run.sh
  carry:    ["$bundle"]
  timeout:  540 s
Results come back from \$OUT (device-run.log, devices, check, seeds, train and bench outputs).
MSG
