"""Trains the PyTorch twins of the zoo's 28x28 models (torch_zoo.py) on full MNIST: the baseline
for shendu's own runs (accuracy after each epoch, training samples/s on this machine).

    /work/scratch/peers/.venv/bin/python tests/reference/train_mnist_torch.py \
        --model shufflenet_v2_mnist --epochs 2 --threads 2 [--data /work/shared/data/mnist]
"""

import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_zoo import MNIST_MODELS  # noqa: E402


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(root, split):
    x = idx(os.path.join(root, f"{split}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = idx(os.path.join(root, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy((x - 0.1307) / 0.3081).unsqueeze(1), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MNIST_MODELS), required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/work/shared/data/mnist")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    model = MNIST_MODELS[args.model]()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = args.epochs * math.ceil(len(xtr) / args.batch)
    # Linear warm-up over 200 steps, then cosine to zero.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    print(f"{args.model}: {sum(p.numel() for p in model.parameters())} parameters, batch {args.batch}, {args.threads} threads")
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        for step, i in enumerate(range(0, len(xtr), args.batch)):
            b = perm[i : i + args.batch]
            loss = F.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 200 == 199:
                print(f"  step {step + 1}: loss {loss.item():.4f}, {time.perf_counter() - t0:.0f} s", flush=True)
        dt = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i : i + 1000]).argmax(1) == yte[i : i + 1000]).sum().item() for i in range(0, len(xte), 1000))
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy {correct / len(xte):.4f}, {dt:.0f} s ({len(xtr) / dt:.0f} samples/s)", flush=True)


if __name__ == "__main__":
    main()
