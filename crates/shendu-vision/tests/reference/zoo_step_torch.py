"""PyTorch's time for the zoo training steps of `shendu bench` (Z1 ResNet-20 at batch 32, Z2
MobileNetV2-28 and Z3 ShuffleNetV2-28 at batch 64): the same models (torch_zoo.py), a fixed
standard-normal batch with uniform labels, cross-entropy and plain SGD at lr 0.01, timed as the
peers harness times W4 and W5 (3 warm-up steps, an inner loop of at least 0.1 s, the median of
7 repetitions). Eager PyTorch, no torch.compile.

    /work/scratch/peers/.venv/bin/python crates/shendu-vision/tests/reference/zoo_step_torch.py THREADS
"""

import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_zoo import ZOO_STEPS  # noqa: E402


def median_step_seconds(step, reps=7, min_rep_s=0.1):
    for _ in range(3):
        step()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        dt = time.perf_counter() - t0
        if dt >= min_rep_s:
            break
        k = max(k * 2, int(k * min_rep_s / max(dt, 1e-9) * 1.2))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        times.append((time.perf_counter() - t0) / k)
    return statistics.median(times)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    for workload, (make, batch, shape) in ZOO_STEPS.items():
        model = make()
        model.train()
        x = torch.randn(batch, *shape)
        y = torch.randint(0, 10, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

        s = median_step_seconds(step)
        print(f"{workload}\t{threads}\t{batch / s:.1f} samples/s\t{s * 1e3:.2f} ms/step", flush=True)


if __name__ == "__main__":
    main()
