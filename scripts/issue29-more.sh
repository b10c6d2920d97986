#!/bin/bash
# Issue 29, item 3 continued (docs/RESULTS.md, "Two more variants"): the relative-1.5 and AVER
# soft terms with the best teacher's features, on both pools of scripts/issue29-variants.sh,
# whose finished runs (teachers, the default, single-best KD + FitNets, the best teacher's
# features) are reused through --resume. First, one default run is repeated in a fresh folder
# with the current code: it must match the earlier one exactly. Resumable.
#
#   scripts/issue29-more.sh [DATA_DIR] [OUT_ROOT]
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --release --features download,train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/release/examples/cifar100_experiments
common=(--dataset cifar10 --data-dir "$data" --valid-from-train 2000 --epochs 4
  --feature-ramp 2 --limit-train 3000 --resume)
default="screened, per batch, standardized + features"
slug=screened--per-batch--standardized---features-seed42
check=$root/i29m-check
mkdir -p "$check/teachers"
cp -n "$root"/i29v-dominant/teachers/*.bpk "$check/teachers/"
RAYON_NUM_THREADS=1 "$exe" ablation "${common[@]}" --seeds 1 --teachers vgg13:12,resnet8x4:4,vgg8:1 \
  --out "$check" --only "$default" > "$check.log" 2>&1
python3 - "$root/i29v-dominant/ablation/$slug/result.json" "$check/ablation/$slug/result.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["accuracy"] for p in sys.argv[1:])
print(f"default, seed 42, dominant pool: earlier {a!r}, now {b!r}")
sys.exit(0 if a == b else 1)
PY
rows="$default|KD + FitNets, single best teacher, standardized|best teacher's features"
pool() { # name teachers
  "$exe" ablation "${common[@]}" --seeds 5 --teachers "$2" --out "$root/i29v-$1" --only "$rows"
}
RAYON_NUM_THREADS=1 pool dominant vgg13:12,resnet8x4:4,vgg8:1 > "$root/i29m-dominant.log" 2>&1 &
RAYON_NUM_THREADS=1 pool comparable vgg13:12,vgg8:12,vgg8:12 > "$root/i29m-comparable.log" 2>&1 &
wait
echo "done: $root/i29v-dominant/ablation.md, $root/i29v-comparable/ablation.md"
