#!/usr/bin/env bash
# Size discipline (tinygrad's MAX_LINE_COUNT): the autodiff core and the device layer stay small
# enough to read. Fails when a folder grows past its budget; raise a budget only on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
check() {
    local folder=$1 budget=$2 lines
    lines=$(cat "$folder"/*.swift | wc -l)
    if [ "$lines" -gt "$budget" ]; then
        echo "size check: $folder has $lines lines, over its budget of $budget" >&2
        status=1
    fi
}
check Sources/TapeCL/Autodiff 1325    # 1300 until TensorID's hash and the single task-local of the leaner recording path
check Sources/TapeCL/Device 1520      # 1300 until the fused kernels; 1360 until the host worker pool; 1440 until the row kernels, column reductions and launch batching; 1480 until the C conversions, streaming stores, one-element path and elementwise kernel cache; 1510 until the blocked, threaded integer loops
check Sources/TapeCL/Ops 450
exit $status
