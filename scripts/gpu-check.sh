#!/usr/bin/env bash
# GPU check: on every GPU backend the machine has (CUDA when `nvidia-smi` finds a GPU, wgpu
# always), runs the test suite with that backend's tests on the GPU, then the
# distillation-step benchmark on it and on flex, and prints their summary tables. Never
# needed for CI (lavapipe covers the wgpu code path there, `cargo check --features cuda` the
# CUDA build); run it on a machine with a real GPU and paste the tables into BENCHMARKS.md.
# With two or more GPUs of a backend it also runs the multi-device comparison on them
# (`multi_device_training_on_the_gpus_named_in_the_environment`: MultiDevice in both
# optimizer modes, and DDP on CUDA, against one device with gradient accumulation).
#
#   scripts/gpu-check.sh                      # wgpu on DiscreteGpu(0), CUDA device 0
#   GPU=IntegratedGpu(0) scripts/gpu-check.sh
#   BACKENDS=cuda scripts/gpu-check.sh        # one backend only
set -euo pipefail
cd "$(dirname "$0")/.."
export CUBECL_WGPU_DEFAULT_DEVICE="${GPU:-DiscreteGpu(0)}"
export NODEVICE_SELECT=1
log="${OUT:-.}/gpu-check.log"
: > "$log"

backends="${BACKENDS:-}"
if [ -z "$backends" ]; then
  backends="wgpu"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    backends="cuda wgpu"
  fi
fi

gpus=1
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
for backend in $backends; do
  pair=""
  if [ "${gpus:-1}" -ge 2 ]; then
    case "$backend" in
      cuda) pair="cuda:0,cuda:1" ;;
      wgpu) pair="wgpu:0,wgpu:1" ;;
    esac
  fi
  echo "== tests on $backend${pair:+ (multi-device on $pair)}" | tee -a "$log"
  BURN_DISTILL_GPU_DEVICES="$pair" cargo test --release --features "$backend,train" --test suite \
    2>&1 | tee -a "$log" | grep -E "^test result|FAILED|panicked" || true
  echo "== distill_step on $backend and flex" | tee -a "$log"
  BENCH_DEVICES="${BENCH_DEVICES:-$backend,flex}" BENCH_TEACHERS="${BENCH_TEACHERS:-1,3,5}" \
    cargo bench --features "$backend" --bench distill_step -- --noplot 2>&1 | tee -a "$log" \
    | sed -n '/^summary on\|^teacher folding on/,/^$/p'
done
echo "full log: $log"
