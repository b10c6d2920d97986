#!/bin/bash
# The issue-21 grid of docs/RESULTS.md ("Ensemble gain"): two teacher pools on CIFAR-10's
# validation split, every baseline and candidate over 3 seeds, then the selection rule.
# Resumable: run it again after a stop and finished runs are reused.
#
#   scripts/ensemble-grid.sh [DATA_DIR] [OUT_ROOT]
#
# DATA_DIR defaults to ../shared/data/cifar10-jpeg, OUT_ROOT to runs. About 4 hours on 2 CPU
# cores run this way, one process after the other; the measured runs put the two pools in
# two processes side by side (RAYON_NUM_THREADS=1 each), about 2 hours.
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
dominant=$root/c10-dominant-3k
comparable=$root/c10-comparable-3k
cargo build --features train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/debug/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4 --seeds 3
  --feature-ramp 2 --resume
  --only "student alone (distiller|KD, single best teacher|FitNets, single best teacher|AVER + features|CA-MKD weights + features|screened, per batch + features|screened relative 1.5|mixture KD + features|standardized + features"
  --skip "single best teacher, standardized|mixture features")
# Teachers on 6,000 training images; the students below use the first 3,000 of them.
"$exe" train-teachers "${common[@]}" --limit-train 6000 --teachers vgg13:12,resnet8x4:4,vgg8:1 --out "$dominant"
mkdir -p "$comparable/teachers"
cp -n "$dominant/teachers/0-vgg13-e12.bpk" "$comparable/teachers/"
"$exe" train-teachers "${common[@]}" --limit-train 6000 --teachers vgg13:12,vgg8:12,vgg8:12 --out "$comparable"
"$exe" ablation "${common[@]}" --limit-train 3000 --teachers vgg13:12,resnet8x4:4,vgg8:1 --out "$dominant"
# Rows that use only teacher 0 (the same file in both pools) or no teacher are the same runs
# in both pools (seed 42 gave identical accuracies); reuse them.
for row in student-alone--distiller--soft-0--feature-0- kd--single-best-teacher fitnets--single-best-teacher; do
  for seed in 42 43 44; do
    dst=$comparable/ablation/$row-seed$seed
    if [ ! -e "$dst" ]; then
      mkdir -p "$dst"
      cp "$dominant/ablation/$row-seed$seed/result.json" "$dst/"
      echo "shared from the dominant pool's run" > "$dst/SHARED"
    fi
  done
done
"$exe" ablation "${common[@]}" --limit-train 3000 --teachers vgg13:12,vgg8:12,vgg8:12 --out "$comparable"
"$exe" select --pools "$dominant,$comparable" --out "$root/ensemble-selection"
