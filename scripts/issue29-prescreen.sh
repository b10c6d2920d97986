#!/bin/bash
# Issue 29 follow-up (docs/RESULTS.md, "Pre-screening once"): the grid row
# "pre-screened once (below-mean teachers)" on the dominant, comparable and diverse pools, 5
# seeds each, beside the default and single-best KD + FitNets runs of scripts/issue29-variants.sh
# and scripts/issue29-diverse.sh (their teachers and results copied into fresh folders and
# reused through --resume). Two pools at a time, one thread each. Resumable.
#
#   scripts/issue29-prescreen.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
rows="screened, per batch, standardized + features|KD + FitNets, single best teacher, standardized|pre-screened once"
pool() { # name teachers source-folder
  local out=$root/i30p-$1
  mkdir -p "$out/teachers" "$out/ablation"
  cp -n "$3"/teachers/*.bpk "$out/teachers/"
  for cell in "$3"/ablation/{screened--per-batch--standardized---features,kd---fitnets--single-best-teacher--standardized}-seed*; do
    mkdir -p "$out/ablation/$(basename "$cell")"
    cp -n "$cell/result.json" "$out/ablation/$(basename "$cell")/"
  done
  RAYON_NUM_THREADS=1 "$exe" ablation --dataset cifar10 --data-dir "$data" --valid-from-train 2000 \
    --epochs 4 --feature-ramp 2 --limit-train 3000 --resume --seeds 5 --teachers "$2" --out "$out" \
    --only "$rows" > "$out.log" 2>&1
}
start=$(date +%s)
pool dominant vgg13:12,resnet8x4:4,vgg8:1 "$root/i29v-dominant" &
pool comparable vgg13:12,vgg8:12,vgg8:12 "$root/i29v-comparable" &
wait
pool diverse vgg13:12,vgg8:12,resnet8x4:16 "$root/i29d-diverse"
echo "wall $(( $(date +%s) - start )) s: $root/i30p-{dominant,comparable,diverse}/ablation.md"
