#!/bin/bash
# Issue 29 (docs/RESULTS.md, "A more diverse pool"): VGG13, VGG8 and a ResNet8x4 trained for 16
# epochs (the first two copied from the comparable pool of scripts/issue29-variants.sh), four
# rows over 5 seeds on CIFAR-10's validation split. Resumable.
#
#   scripts/issue29-diverse.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4
  --feature-ramp 2 --resume --teachers vgg13:12,vgg8:12,resnet8x4:16)
out=$root/i29d-diverse
mkdir -p "$out/teachers"
cp -n "$root"/i29v-comparable/teachers/{0-vgg13-e12,1-vgg8-e12}.bpk "$out/teachers/"
"$exe" train-teachers "${common[@]}" --limit-train 6000 --out "$out"
rows="screened, per batch, standardized + features|KD + FitNets, single best teacher, standardized"
rows+="|screened relative 1.5, standardized + best teacher's features"
rows+="|AVER, standardized + best teacher's features"
"$exe" ablation "${common[@]}" --limit-train 3000 --seeds 5 --out "$out" --only "$rows"
