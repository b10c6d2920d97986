#!/bin/bash
# Issue 21's longer-schedule check of docs/RESULTS.md: the comparable pool's teachers (made by
# scripts/ensemble-grid.sh), students on 6,000 images for 8 epochs (twice the grid's images and
# epochs), 3 seeds, the rows that decide the ranking. Resumable (--resume).
#
#   scripts/long-schedule.sh [DATA_DIR] [OUT_ROOT]
#
# As measured: the rows split over two processes side by side (the seeds cannot be split:
# --seed also seeds the validation hold-out), then the two folders merged and reported as one
# ablation, every run reused. About 2 h 20 min on 2 CPU cores.
set -euo pipefail
data=${1:-../shared/data/cifar10-jpeg}
root=${2:-runs}
cargo build --features train,charts --example cifar100_experiments
exe=${CARGO_TARGET_DIR:-target}/debug/examples/cifar100_experiments
a=$root/c10-comparable-long
b=$root/c10-comparable-long-b
merged=$root/c10-comparable-long-merged
for d in "$a" "$b" "$merged"; do
  mkdir -p "$d/teachers"
  cp -n "$root"/c10-comparable-3k/teachers/*.bpk "$d/teachers/"
done
common=(ablation --dataset cifar10 --data-dir "$data" --valid-from-train 2000 --limit-train 6000
  --teachers vgg13:12,vgg8:12,vgg8:12 --epochs 8 --seeds 3 --feature-ramp 2 --resume)
rows_a="FitNets, single best teacher|CA-MKD weights + features|screened, per batch + features"
rows_b="screened, per batch, standardized + features|screened relative 1.5, mixture, standardized + features"
"$exe" "${common[@]}" --only "$rows_a" --out "$a" > "$a.log" 2>&1 &
"$exe" "${common[@]}" --only "$rows_b" --out "$b" > "$b.log" 2>&1 &
wait
for run in "$a"/ablation/* "$b"/ablation/*; do
  if [ -f "$run/result.json" ]; then
    mkdir -p "$merged/ablation/$(basename "$run")"
    cp "$run/result.json" "$merged/ablation/$(basename "$run")/"
  fi
done
"$exe" "${common[@]}" --only "$rows_a|$rows_b" --out "$merged"
