"""The single ops of benches/ops.rs in PyTorch on CPU, for a per-op comparison.

3x3 convolution (stride 1, padding 1, bias) forward without autograd, its backward (input,
weight and bias gradients: forward+backward less the forward with autograd), and
training-mode batch norm forward and backward, on VGG13's layer shapes at batch 64. Timed
interleaved, median of rounds; prints lines in the format of benches/ops.rs:

    op=<name> channels=<c> size=<s> ms=<milliseconds> gflops=<GFLOP/s or 0>

Needs PyTorch (`pip install torch`); never needed by the tests. Usage:

    python3 benches/reference/torch_ops.py --threads 2
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

LAYERS = [(64, 32), (128, 16), (256, 8), (512, 4), (512, 2)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = a.batch
    print(f"ops on pytorch {torch.__version__} (batch {n}, {a.threads} threads, median of {a.rounds} interleaved rounds):")
    for c, s in LAYERS:
        x = torch.randn(n, c, s, s)
        w = torch.randn(c, c, 3, 3)
        b = torch.randn(c)
        gamma, beta = torch.ones(c), torch.zeros(c)

        def conv_forward():
            with torch.no_grad():
                F.conv2d(x, w, b, padding=1)

        def tracked():
            return [t.clone().requires_grad_() for t in (x, w, b)]

        def conv_forward_tracked():
            xi, wi, bi = tracked()
            F.conv2d(xi, wi, bi, padding=1)

        def conv_forward_backward():
            xi, wi, bi = tracked()
            F.conv2d(xi, wi, bi, padding=1).sum().backward()

        def bn_tracked():
            return [t.clone().requires_grad_() for t in (x, gamma, beta)]

        def bn_forward():
            xi, gi, bi = bn_tracked()
            F.batch_norm(xi, None, None, gi, bi, training=True, eps=1e-5)

        def bn_forward_backward():
            xi, gi, bi = bn_tracked()
            F.batch_norm(xi, None, None, gi, bi, training=True, eps=1e-5).sum().backward()

        ops = [conv_forward, conv_forward_tracked, conv_forward_backward, bn_forward, bn_forward_backward]
        for op in ops:
            op()
        times = [[] for _ in ops]
        for _ in range(a.rounds):
            for i, op in enumerate(ops):
                start = time.perf_counter()
                op()
                times[i].append(time.perf_counter() - start)
        t = [statistics.median(v) for v in times]
        flops = 2.0 * n * c * s * s * c * 9
        lines = [
            ("conv_forward", t[0], flops),
            ("conv_backward", max(t[2] - t[1], 0.0), 2 * flops),
            ("bn_forward", t[3], 0.0),
            ("bn_backward", max(t[4] - t[3], 0.0), 0.0),
        ]
        for op, sec, fl in lines:
            print(f"op={op} channels={c} size={s} ms={sec * 1e3:.3f} gflops={fl / max(sec, 1e-12) / 1e9:.1f}", flush=True)


if __name__ == "__main__":
    main()
