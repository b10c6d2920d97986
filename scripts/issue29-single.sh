#!/bin/bash
# Issue 29 (docs/RESULTS.md, "Which teacher teaches this student"): KD + FitNets with one teacher
# alone, for the second VGG8 and the ResNet8x4 of the earlier pools (their weights copied), 5
# seeds each, compared seed by seed with the VGG13 alone (the single-best runs of the dominant
# and diverse pools). Resumable.
#
#   scripts/issue29-single.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4 --feature-ramp 2
  --limit-train 3000 --seeds 5 --resume --only "KD + FitNets, single best teacher, standardized")
one() { # name spec source-file
  local out=$root/i29s-$1
  mkdir -p "$out/teachers"
  cp -n "$3" "$out/teachers/0-$(basename "$3" | cut -d- -f2-)"
  "$exe" ablation "${common[@]}" --teachers "$2" --out "$out"
}
RAYON_NUM_THREADS=1 one vgg8 vgg8:12 "$root/i29v-comparable/teachers/1-vgg8-e12.bpk" > "$root/i29s-vgg8.log" 2>&1 &
RAYON_NUM_THREADS=1 one resnet resnet8x4:16 "$root/i29d-diverse/teachers/2-resnet8x4-e16.bpk" > "$root/i29s-resnet.log" 2>&1 &
wait
echo "done: $root/i29s-vgg8/ablation.md, $root/i29s-resnet/ablation.md"
