#!/usr/bin/env bash
# Runs the distill_step workload in burn-distill (flex, the CPU default) and in PyTorch on
# the same CPU with the same thread count, one after the other, and prints images per
# second of each step and the ratio burn-distill / PyTorch; then the same for the single
# ops (benches/ops.rs against torch_ops.py: conv forward/backward, batch norm
# forward/backward on VGG13's layer shapes), as speed ratios per op. OPS=0 skips the ops,
# STEPS=0 the steps.
#
#   benches/reference/compare.sh            # 2 threads, K = 1,3,5, batch 64, width 64
#   THREADS=4 TEACHERS=1,3 WIDTH=32 BATCH=32 benches/reference/compare.sh
#   FEATURES=burn/x86-v4 benches/reference/compare.sh     # flex with AVX-512 gemm kernels
#   FEATURES=tch DEVICE=tch benches/reference/compare.sh  # Burn's LibTorch backend (needs
#                                 # libtorch 2.9.0: LIBTORCH_USE_PYTORCH=1, see BENCHMARKS.md)
#
# Needs PyTorch for the reference half: `pip install torch` (set PYTHON to its python).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS="${THREADS:-2}"
TEACHERS="${TEACHERS:-1,3,5}"
WIDTH="${WIDTH:-64}"
BATCH="${BATCH:-64}"
PYTHON="${PYTHON:-python3}"
OPS="${OPS:-1}"
# Cargo features for the burn-distill half (e.g. FEATURES=x86-v4) and the device it runs on.
FEATURES="${FEATURES:-}"
DEVICE="${DEVICE:-flex}"
STEPS="${STEPS:-1}"
out="$(mktemp -d)"

if [ "$STEPS" != 0 ]; then

# burn-distill: only the interleaved summary is needed here, so criterion's own
# measurements are cut short with a filter that matches nothing.
RAYON_NUM_THREADS="$THREADS" BENCH_DEVICES="$DEVICE" BENCH_TEACHERS="$TEACHERS" \
  BENCH_WIDTH="$WIDTH" BENCH_BATCH="$BATCH" \
  cargo bench --features "$FEATURES" --bench distill_step -- --warm-up-time 1 --measurement-time 1 summary-only \
  | tee "$out/burn.txt"
"$PYTHON" benches/reference/torch_distill_step.py --threads "$THREADS" --teachers "$TEACHERS" \
  --width "$WIDTH" --batch "$BATCH" \
  | tee "$out/torch.txt"

"$PYTHON" - "$out/burn.txt" "$out/torch.txt" <<'PY'
import re, sys
burn = {}
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 5 and cells[0].isdigit():
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
fi

if [ "$OPS" != 0 ]; then
RAYON_NUM_THREADS="$THREADS" BENCH_DEVICES="$DEVICE" BENCH_BATCH="$BATCH" \
  cargo bench --features "$FEATURES" --bench ops -- --warm-up-time 1 --measurement-time 1 summary-only \
  | tee "$out/burn-ops.txt"
"$PYTHON" benches/reference/torch_ops.py --threads "$THREADS" --batch "$BATCH" \
  | tee "$out/torch-ops.txt"
"$PYTHON" - "$out/burn-ops.txt" "$out/torch-ops.txt" <<'PY'
import re, sys
def read(path):
    rows = {}
    for line in open(path):
        m = re.match(r"op=(\w+) channels=(\d+) size=(\d+) ms=([\d.]+) gflops=([\d.]+)", line)
        if m:
            rows[(m[1], int(m[2]), int(m[3]))] = (float(m[4]), float(m[5]))
    return rows
burn, torch = read(sys.argv[1]), read(sys.argv[2])
print("\n| op | layer (C, HxW) | burn-distill ms | PyTorch ms | burn GFLOP/s | PyTorch GFLOP/s | burn speed / PyTorch |")
print("|---|---|---:|---:|---:|---:|---:|")
total = {}
for key, (bms, bgf) in burn.items():
    if key not in torch:
        continue
    tms, tgf = torch[key]
    op, c, s = key
    gf = lambda v: f"{v:.1f}" if v > 0 else "–"
    print(f"| {op} | {c}, {s}x{s} | {bms:.1f} | {tms:.1f} | {gf(bgf)} | {gf(tgf)} | {tms / max(bms, 1e-9):.2f} |")
    b, t = total.get(op, (0.0, 0.0))
    total[op] = (b + bms, t + tms)
print("\n| op, summed over the layers | burn-distill ms | PyTorch ms | burn speed / PyTorch |")
print("|---|---:|---:|---:|")
for op, (b, t) in total.items():
    print(f"| {op} | {b:.1f} | {t:.1f} | {t / max(b, 1e-9):.2f} |")
PY
fi
