#!/usr/bin/env bash
# Runs the distill_step workload in burn-distill (flex, the CPU default) and in PyTorch on
# the same CPU with the same thread count, one after the other, and prints images per
# second of each step and the ratio burn-distill / PyTorch.
#
#   benches/reference/compare.sh            # 2 threads, K = 1,3,5, batch 64, width 64
#   THREADS=4 TEACHERS=1,3 WIDTH=32 BATCH=32 benches/reference/compare.sh
#
# Needs PyTorch for the reference half: `pip install torch` (set PYTHON to its python).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS="${THREADS:-2}"
TEACHERS="${TEACHERS:-1,3,5}"
WIDTH="${WIDTH:-64}"
BATCH="${BATCH:-64}"
PYTHON="${PYTHON:-python3}"
out="$(mktemp -d)"

# burn-distill: only the interleaved summary is needed here, so criterion's own
# measurements are cut short with a filter that matches nothing.
RAYON_NUM_THREADS="$THREADS" BENCH_DEVICES=flex BENCH_TEACHERS="$TEACHERS" \
  BENCH_WIDTH="$WIDTH" BENCH_BATCH="$BATCH" \
  cargo bench --bench distill_step -- --warm-up-time 1 --measurement-time 1 summary-only \
  | tee "$out/burn.txt"
"$PYTHON" benches/reference/torch_distill_step.py --threads "$THREADS" --teachers "$TEACHERS" \
  --width "$WIDTH" --batch "$BATCH" \
  | tee "$out/torch.txt"

"$PYTHON" - "$out/burn.txt" "$out/torch.txt" <<'PY'
import re, sys
burn = {}
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 5 and cells[0].isdigit():
        burn[int(cells[0])] = [float(c) for c in cells[1:4]]
print("\n| K | step | burn-distill img/s | PyTorch img/s | burn / PyTorch |")
print("|---:|---|---:|---:|---:|")
for line in open(sys.argv[2]):
    m = re.match(r"K=(\d+) a=([\d.]+) b=([\d.]+) c=([\d.]+)", line)
    if not m or int(m[1]) not in burn:
        continue
    k = int(m[1])
    for name, b, t in zip(["(a) student", "(b) teachers", "(c) distill"], burn[k], map(float, m.groups()[1:])):
        print(f"| {k} | {name} | {b:.1f} | {t:.1f} | {b / t:.2f} |")
PY
