#!/usr/bin/env bash
# The one command for a lent GPU (H100/H200, ~10 minutes of commands): cross-backend verification on
# CUDA (float32 with TF32 off, and TF32), then the gpu_window preset (perf points, DeepBench FLOP
# fractions, S1/S5/S10 at GPU sizes). Everything lands under $OUT: records in $OUT/<grid>/, verify
# reports in $OUT/verify/; commit them under results/. Run from the repository root:
#
#   OUT=$OUT PYTHONPATH=. bash benchmarks/gpu_window.sh
#
# DEVICE=cpu SHRINK=1 runs the same path on CPU with every size capped (tests/test_gpu_window.py),
# so that the GPU's first minute is not spent on a typo.
set -euo pipefail
OUT=${OUT:-results/gpu_window}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python}
export PYTHONPATH=${PYTHONPATH:-.}
shrink=() archs=(all)
if [[ -n "${SHRINK:-}" ]]; then shrink=(--shrink) archs=(rnn); fi
mkdir -p "$OUT/verify"
"$PY" -m experiments run --preset gpu_window --device "$DEVICE" --dry-run "${shrink[@]}" | tail -n 1
modes=(float32 tf32)
[[ "$DEVICE" == cpu ]] && modes=(float32)  # TF32 is a GPU mode
for mode in "${modes[@]}"; do
  flags=(--dtype float32)
  [[ "$mode" == tf32 ]] && flags=(--precision tf32)
  # exit 1 is a failed check (the report says which); anything else stops the window
  "$PY" -m experiments verify --arch "${archs[@]}" --device "$DEVICE" "${flags[@]}" --json \
    > "$OUT/verify/${DEVICE}_${mode}.json" || [[ $? -eq 1 ]]
done
"$PY" -m experiments run --preset gpu_window --device "$DEVICE" --results "$OUT" "${shrink[@]}"
