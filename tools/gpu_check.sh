#!/usr/bin/env bash
# One prepared check for a machine with a CUDA GPU (see issue 3): runs the Triton linear_scan tests
# compiled (no interpreter), then the GPU benchmark, and writes everything under $OUT:
#
#   $OUT/env.txt                 GPU, driver, torch/triton versions
#   $OUT/gpu_tests.txt|.xml      pytest -m gpu over tests/kernels (compiled kernels)
#   $OUT/benchmarks/scan_gpu.*   tools/bench_scan.py --gpu (JSON + markdown table)
#   $OUT/bench.txt               its console output
#
# Usage: OUT=/some/dir tools/gpu_check.sh [--quick]    (PYTHON overrides the interpreter)
# Budget: about 2-4 min of tests (mostly Triton JIT compiles) and 4-8 min of benchmark on an H100
# (--quick: about half); the CPU suite needs no GPU and is not rerun here.
# Exit status: non-zero if any step failed; later steps still run so one call yields all results.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT/benchmarks"
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3
fi
QUICK=()
[[ "${1:-}" == "--quick" ]] && QUICK=(--quick)
unset TRITON_INTERPRET  # the point of this script: real code generation
status=0

{
  nvidia-smi || true
  "$PY" -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__); print(torch.cuda.get_device_name(0))'
  "$PY" -m pip list 2>/dev/null | grep -i -E '^(fla-core|flash-linear-attention|accelerated-scan) ' || echo "peers: none installed"
} >"$OUT/env.txt" 2>&1

# 1. Kernel correctness, compiled. The interpreter suite skips itself when CUDA is present.
"$PY" -m pytest tests/kernels -m gpu -q -p no:cacheprovider --junitxml="$OUT/gpu_tests.xml" 2>&1 \
  | tee "$OUT/gpu_tests.txt" || status=1

# 2. Benchmark: table + JSON, with the copy-bandwidth reference and whichever peers are installed.
"$PY" tools/bench_scan.py --gpu "${QUICK[@]}" --out-dir "$OUT/benchmarks" 2>&1 | tee "$OUT/bench.txt" || status=1

echo "gpu_check: exit $status; results in $OUT" | tee -a "$OUT/env.txt"
exit "$status"
