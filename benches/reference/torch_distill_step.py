"""The distill_step workload in PyTorch on CPU, for a side-by-side comparison.

Same models (RepDistiller-layout VGG8 student, VGG13 teachers, width 64), batch 64,
32x32x3, 100 classes, the same thread count, and the same three measurements as
benches/distill_step.rs: (a) student train step, (b) K teacher inferences, (c) the full
distillation step (per-sample cross-entropy screening below the mean, softmax(-CE)
weights, weighted KD at T = 4, 1x1-conv+BN feature adapters with MSE, hard CE, SGD
Nesterov step). Timed interleaved, median of rounds; prints one line per K:

    K=<k> a=<img/s> b=<img/s> c=<img/s> ratio=<c/(a+b)>

Needs PyTorch (`pip install torch`); never needed by the tests. Usage:

    python3 benches/reference/torch_distill_step.py --threads 2 --teachers 1,3,5
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "pytorch"))
from make_fixtures import Vgg  # noqa: E402  (the RepDistiller-layout VGG)


def vgg(depth, width, classes):
    per_stage = {8: 1, 13: 2}[depth]
    stages = [[c] * per_stage for c in (width, 2 * width, 4 * width, 8 * width, 8 * width)]
    return Vgg(stages, classes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--teachers", default="1,3,5")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    classes, n, w = 100, a.batch, a.width
    x = torch.randn(n, 3, 32, 32)
    y = torch.randint(0, classes, (n,))

    def sgd(params):
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)

    for k in [int(v) for v in a.teachers.split(",")]:
        student = vgg(8, w, classes).train()
        opt_a = sgd(student.parameters())
        teachers = [vgg(13, w, classes).eval() for _ in range(k)]
        for t in teachers:
            t.requires_grad_(False)
        student_c = vgg(8, w, classes).train()
        adapters = nn.ModuleList(
            nn.Sequential(nn.Conv2d(8 * w, 8 * w, 1, bias=False), nn.BatchNorm2d(8 * w)) for _ in range(k))
        opt_c = sgd(list(student_c.parameters()) + list(adapters.parameters()))

        def step_a():
            opt_a.zero_grad()
            F.cross_entropy(student(x), y).backward()
            opt_a.step()

        def step_b():
            with torch.no_grad():
                for t in teachers:
                    t(x)

        def step_c():
            with torch.no_grad():
                outs = [t.forward_features(x) for t in teachers]
            opt_c.zero_grad()
            feature, logits = student_c.forward_features(x)
            ce = torch.stack([F.cross_entropy(z, y, reduction="none") for _, z in outs], 1)
            keep = (ce <= ce.mean(1, keepdim=True) * (1 + 1e-6)) | (ce <= ce.min(1, keepdim=True).values)
            raw = torch.exp(-(ce - ce.min(1, keepdim=True).values)) * keep
            weights = raw / raw.sum(1, keepdim=True)
            temperature = 4.0
            log_s = F.log_softmax(logits / temperature, 1)
            soft = 0
            feat = 0
            for i, (f, z) in enumerate(outs):
                log_t = F.log_softmax(z / temperature, 1)
                kd = (log_t.exp() * (log_t - log_s)).sum(1) * temperature ** 2
                soft = soft + (weights[:, i] * kd).mean()
                mse = ((adapters[i](feature) - f) ** 2).mean((1, 2, 3))
                feat = feat + (weights[:, i] * mse).mean()
            loss = F.cross_entropy(logits, y) + soft + 50 * feat
            loss.backward()
            opt_c.step()

        for f in (step_a, step_b, step_c):
            f()  # warm-up
        times = {"a": [], "b": [], "c": []}
        for _ in range(a.rounds):
            for name, f in (("a", step_a), ("b", step_b), ("c", step_c)):
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)
        ta, tb, tc = (statistics.median(times[s]) for s in "abc")
        print(f"K={k} a={n / ta:.1f} b={n / tb:.1f} c={n / tc:.1f} ratio={tc / (ta + tb):.3f}", flush=True)


if __name__ == "__main__":
    main()
