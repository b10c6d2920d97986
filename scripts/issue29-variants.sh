#!/bin/bash
# Issue 29, item 3 (docs/RESULTS.md, "Four more variants"): the best teacher's features, CA-MKD's
# confidence inside the screened set, normalized features and one mixed feature target, each
# against the default and single-best KD + FitNets (standardized) on both teacher pools of
# issue 21, 5 seeds, CIFAR-10's validation split only. Resumable: run it again after a stop
# and finished runs are reused. The shared VGG13 teacher is trained once (both cores), then the
# two pools run side by side, one thread each.
#
#   scripts/issue29-variants.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4 --seeds 5
  --feature-ramp 2 --resume)
rows="screened, per batch, standardized + features|KD + FitNets, single best teacher, standardized"
rows+="|best teacher's features|screened per sample + CA-MKD|normalized features"
rows+="|standardized + mixture features"
mkdir -p "$root"
# Teachers on 6,000 training images; the students use the first 3,000 of them.
"$exe" train-teachers "${common[@]}" --limit-train 6000 --teachers vgg13:12 \
  --out "$root/i29v-vgg13" > "$root/i29v-vgg13.log" 2>&1
pool() { # name teachers
  local out=$root/i29v-$1
  mkdir -p "$out/teachers"
  cp -n "$root/i29v-vgg13/teachers/0-vgg13-e12.bpk" "$out/teachers/"
  "$exe" train-teachers "${common[@]}" --limit-train 6000 --teachers "$2" --out "$out"
  "$exe" ablation "${common[@]}" --limit-train 3000 --teachers "$2" --out "$out" --only "$rows"
}
RAYON_NUM_THREADS=1 pool dominant vgg13:12,resnet8x4:4,vgg8:1 > "$root/i29v-dominant.log" 2>&1 &
RAYON_NUM_THREADS=1 pool comparable vgg13:12,vgg8:12,vgg8:12 > "$root/i29v-comparable.log" 2>&1 &
wait
echo "done: $root/i29v-dominant/ablation.md, $root/i29v-comparable/ablation.md"
