#!/usr/bin/env bash
# GPU check: builds with wgpu, runs the test suite with the wgpu tests on the machine's GPU,
# then the distillation-step benchmark on wgpu and flex, and prints their summary tables.
# Never needed for CI (lavapipe covers the wgpu code path there); run it on a machine with a
# real GPU and paste the tables into BENCHMARKS.md.
#
#   scripts/gpu-check.sh                      # DiscreteGpu(0)
#   GPU=IntegratedGpu(0) scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CUBECL_WGPU_DEFAULT_DEVICE="${GPU:-DiscreteGpu(0)}"
export NODEVICE_SELECT=1
log="${OUT:-.}/gpu-check.log"

echo "== tests on wgpu ($CUBECL_WGPU_DEFAULT_DEVICE)" | tee "$log"
cargo test --release --features wgpu,train --test suite 2>&1 | tee -a "$log" | grep -E "^test result|FAILED|panicked" || true

echo "== distill_step on wgpu and flex" | tee -a "$log"
BENCH_DEVICES="${BENCH_DEVICES:-wgpu,flex}" BENCH_TEACHERS="${BENCH_TEACHERS:-1,3,5}" \
  cargo bench --features wgpu --bench distill_step -- --noplot 2>&1 | tee -a "$log" \
  | sed -n '/^summary on\|^teacher folding on/,/^$/p'
echo "full log: $log"
