#!/bin/bash
# Issue 29's grid (docs/RESULTS.md, "Ensemble gain against standardized peers"): the default
# against its own loss on the best teacher alone and against AVER, CA-MKD and EBKD with logit
# standardization, 5 seeds, both teacher pools of issue 21, CIFAR-10's validation split.
# Resumable: run it again after a stop and finished runs are reused. The two pools run side
# by side, one thread each.
#
#   scripts/issue29-grid.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4 --seeds 5
  --feature-ramp 2 --resume
  --only "screened, per batch, standardized + features|screened, per batch, standardized + closest features|screened relative 1.5, standardized + features|screened relative 1.5, mixture, standardized + features|KD + FitNets, single best teacher, standardized|AVER, standardized + features|CA-MKD weights, standardized + features|EBKD weights, standardized + features")
pool() { # name teachers
  local out=$root/i29-$1
  # Teachers on 6,000 training images; the students use the first 3,000 of them.
  "$exe" train-teachers "${common[@]}" --limit-train 6000 --teachers "$2" --out "$out"
  "$exe" ablation "${common[@]}" --limit-train 3000 --teachers "$2" --out "$out"
}
RAYON_NUM_THREADS=1 pool dominant vgg13:12,resnet8x4:4,vgg8:1 > "$root/i29-dominant.log" 2>&1 &
RAYON_NUM_THREADS=1 pool comparable vgg13:12,vgg8:12,vgg8:12 > "$root/i29-comparable.log" 2>&1 &
wait
echo "done: $root/i29-dominant/ablation.md, $root/i29-comparable/ablation.md"
