#!/usr/bin/env python3
"""Writes loss_optim.json: PyTorch float64 reference values for shendu-nn's losses (value and
input gradient), optimizers (parameters after each of a few steps on a fixed problem) and
learning-rate schedulers. Checked by tests/loss_reference.rs, tests/optim_reference.rs and
tests/schedule.rs. See README.md for the exact command.

Inputs are rounded to 6 decimals before PyTorch sees them, so the JSON holds exactly the values
both sides compute on; outputs are written with Python's shortest round-trip repr.
"""

import json
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
# kl_div's 'mean' is checked on purpose (it is PyTorch's default); its deprecation note is noise.
warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
GEN = torch.Generator().manual_seed(20240611)


def rnd(*shape, scale=1.0, lo=None, hi=None):
    if lo is not None:
        t = torch.rand(*shape, generator=GEN) * (hi - lo) + lo
    else:
        t = torch.randn(*shape, generator=GEN) * scale
    return torch.round(t * 1e6) / 1e6


def enc(t):
    t = t.detach().contiguous()
    if t.dtype == torch.int64:
        return {"shape": list(t.shape), "data": [int(v) for v in t.reshape(-1).tolist()]}
    data = [float(v) for v in t.to(torch.float64).reshape(-1).tolist()]
    assert all(math.isfinite(v) for v in data), "non-finite value in reference data"
    return {"shape": list(t.shape), "data": data}


# ---- losses -----------------------------------------------------------------------------------

LOSSES = []


def loss_case(loss, name, fn, inputs, params):
    """`inputs` maps names to tensors; the first is the one differentiated. For reduction
    'none' the gradient is of sum(loss * upstream), with `upstream` recorded."""
    first = next(iter(inputs))
    x = inputs[first].clone().requires_grad_(True)
    args = dict(inputs)
    args[first] = x
    out = fn(**args)
    case = {"loss": loss, "name": name, "params": params, "inputs": {k: enc(v) for k, v in inputs.items()}}
    if out.dim() == 0:
        out.backward()
    else:
        up = rnd(*out.shape)
        (out * up).sum().backward()
        case["upstream"] = enc(up)
    case["value"] = enc(out)
    case["grad"] = enc(x.grad)
    LOSSES.append(case)


REDUCTIONS = ["mean", "sum", "none"]

a, b = rnd(3, 4), rnd(3, 4)
b[0, 1] = a[0, 1]  # an exact tie: |d| has gradient 0 there in PyTorch
for red in REDUCTIONS:
    loss_case("mse_loss", f"mse_{red}", lambda input, target: F.mse_loss(input, target, reduction=red),
              {"input": a, "target": b}, {"reduction": red})
    loss_case("l1_loss", f"l1_{red}", lambda input, target: F.l1_loss(input, target, reduction=red),
              {"input": a, "target": b}, {"reduction": red})
    for beta in [1.0, 0.5, 0.0]:
        loss_case("smooth_l1_loss", f"smooth_l1_b{beta}_{red}",
                  lambda input, target: F.smooth_l1_loss(input, target, reduction=red, beta=beta),
                  {"input": a, "target": b}, {"reduction": red, "beta": beta})

# Cross entropy and NLL: [N, C] and [N, C, d] inputs, class weights, smoothing, ignored targets.
logits = rnd(6, 5, scale=2.0)
targets = torch.tensor([0, 4, 2, 2, 1, 3])
targets_ign = torch.tensor([0, 4, -100, 2, 1, -100])
targets_ign1 = torch.tensor([0, 1, 2, 1, 4, 3])
cw = rnd(5, lo=0.2, hi=2.0)
logits3 = rnd(2, 4, 3, scale=1.5)
targets3 = torch.tensor([[0, 3, 1], [2, 2, 0]])
for red in REDUCTIONS:
    for opt_name, kw, tgt in [
        ("plain", {}, targets),
        ("weight", {"weight": cw}, targets),
        ("smooth", {"label_smoothing": 0.1}, targets),
        ("weight_smooth", {"weight": cw, "label_smoothing": 0.25}, targets),
        ("ignore", {"ignore_index": -100}, targets_ign),
        ("ignore1_weight_smooth", {"ignore_index": 1, "weight": cw, "label_smoothing": 0.2}, targets_ign1),
        ("ignore_smooth", {"ignore_index": -100, "label_smoothing": 0.3}, targets_ign),
    ]:
        params = {"reduction": red, "label_smoothing": kw.get("label_smoothing", 0.0)}
        if "ignore_index" in kw:
            params["ignore_index"] = kw["ignore_index"]
        inputs = {"input": logits, "target": tgt}
        if "weight" in kw:
            inputs["weight"] = kw["weight"]
        extra = {k: v for k, v in kw.items() if k != "weight"}
        loss_case("cross_entropy", f"ce_{opt_name}_{red}",
                  lambda input, target, weight=None: F.cross_entropy(input, target, weight=weight, reduction=red, **extra),
                  inputs, params)
    loss_case("cross_entropy", f"ce_3d_{red}",
              lambda input, target: F.cross_entropy(input, target, reduction=red, label_smoothing=0.1),
              {"input": logits3, "target": targets3}, {"reduction": red, "label_smoothing": 0.1})
    logp = torch.round(F.log_softmax(rnd(6, 5), dim=1) * 1e6) / 1e6
    for opt_name, w in [("plain", None), ("weight", cw)]:
        inputs = {"input": logp, "target": targets}
        if w is not None:
            inputs["weight"] = w
        loss_case("nll_loss", f"nll_{opt_name}_{red}",
                  lambda input, target, weight=None: F.nll_loss(input, target, weight=weight, reduction=red),
                  inputs, {"reduction": red})

# Binary cross entropy on probabilities (with soft targets) and on logits (wide range).
probs = rnd(4, 3, lo=0.02, hi=0.98)
btargets = torch.round(torch.rand(4, 3, generator=GEN) * 1e6) / 1e6
btargets[0] = torch.tensor([0.0, 1.0, 1.0])
bw = rnd(3, lo=0.5, hi=2.0)
blogits = rnd(4, 3, scale=3.0)
blogits[0] = torch.tensor([-40.0, 0.0, 35.0])
pos_w = rnd(3, lo=0.5, hi=3.0)
for red in REDUCTIONS:
    loss_case("binary_cross_entropy", f"bce_{red}", lambda input, target: F.binary_cross_entropy(input, target, reduction=red),
              {"input": probs, "target": btargets}, {"reduction": red})
    loss_case("binary_cross_entropy", f"bce_weight_{red}",
              lambda input, target, weight: F.binary_cross_entropy(input, target, weight=weight, reduction=red),
              {"input": probs, "target": btargets, "weight": bw}, {"reduction": red})
    loss_case("binary_cross_entropy_with_logits", f"bcel_{red}",
              lambda input, target: F.binary_cross_entropy_with_logits(input, target, reduction=red),
              {"input": blogits, "target": btargets}, {"reduction": red})
    loss_case("binary_cross_entropy_with_logits", f"bcel_posw_{red}",
              lambda input, target, pos_weight: F.binary_cross_entropy_with_logits(input, target, pos_weight=pos_weight, reduction=red),
              {"input": blogits, "target": btargets, "pos_weight": pos_w}, {"reduction": red})

# KL divergence: log-probability input; probability target with zeros, or log-probability target.
kin = torch.round(F.log_softmax(rnd(3, 4), dim=1) * 1e6) / 1e6
kt = rnd(3, 4, lo=0.0, hi=1.0)
kt[0, 2] = 0.0
kt[2, 0] = 0.0
klt = torch.round(F.log_softmax(rnd(3, 4), dim=1) * 1e6) / 1e6
for red in ["mean", "batchmean", "sum", "none"]:
    loss_case("kl_div", f"kl_{red}", lambda input, target: F.kl_div(input, target, reduction=red),
              {"input": kin, "target": kt}, {"reduction": red, "log_target": False})
    loss_case("kl_div", f"kl_logt_{red}", lambda input, target: F.kl_div(input, target, reduction=red, log_target=True),
              {"input": kin, "target": klt}, {"reduction": red, "log_target": True})

# ---- optimizers -------------------------------------------------------------------------------

# The fixed problem: a linear model y = x @ w + b with a mean squared error, from fixed starts.
X, Y = rnd(5, 3), rnd(5, 2)
W0, B0 = rnd(3, 2), rnd(2)
STEPS = 5


def run_optim(make):
    w = W0.clone().requires_grad_(True)
    b = B0.clone().requires_grad_(True)
    opt = make([w, b])
    after = []
    for _ in range(STEPS):
        opt.zero_grad()
        ((X @ w + b - Y) ** 2).mean().backward()
        opt.step()
        after.append({"w": enc(w), "b": enc(b)})
    return after


OPTIMS = []
for name, kind, cfg, make in [
    ("sgd_plain", "sgd", {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, foreach=False)),
    ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False)),
    ("sgd_dampening", "sgd", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, dampening=0.3, foreach=False)),
    ("sgd_nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, foreach=False)),
    ("sgd_wd", "sgd", {"lr": 0.1, "weight_decay": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1, foreach=False)),
    ("sgd_momentum_wd", "sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05, foreach=False)),
    ("adam", "adam", {"lr": 0.1}, lambda p: torch.optim.Adam(p, lr=0.1, foreach=False)),
    ("adam_wd", "adam", {"lr": 0.1, "weight_decay": 0.1}, lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1, foreach=False)),
    ("adam_betas", "adam", {"lr": 0.05, "betas": [0.3, 0.9], "eps": 1e-6},
     lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.3, 0.9), eps=1e-6, foreach=False)),
    ("adam_amsgrad", "adam", {"lr": 0.2, "amsgrad": True}, lambda p: torch.optim.Adam(p, lr=0.2, amsgrad=True, foreach=False)),
    ("adamw", "adamw", {"lr": 0.1, "weight_decay": 0.1}, lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, foreach=False)),
    ("adamw_default_wd", "adamw", {"lr": 0.1}, lambda p: torch.optim.AdamW(p, lr=0.1, foreach=False)),
    ("adamw_amsgrad", "adamw", {"lr": 0.2, "weight_decay": 0.05, "amsgrad": True},
     lambda p: torch.optim.AdamW(p, lr=0.2, weight_decay=0.05, amsgrad=True, foreach=False)),
    ("rmsprop", "rmsprop", {"lr": 0.01}, lambda p: torch.optim.RMSprop(p, lr=0.01, foreach=False)),
    ("rmsprop_momentum", "rmsprop", {"lr": 0.01, "momentum": 0.9}, lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, foreach=False)),
    ("rmsprop_centered", "rmsprop", {"lr": 0.01, "centered": True}, lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True, foreach=False)),
    ("rmsprop_all", "rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.1, foreach=False)),
]:
    OPTIMS.append({"name": name, "optim": kind, "config": cfg, "after": run_optim(make)})

# ---- gradient clipping ------------------------------------------------------------------------

G1, G2 = rnd(3, 2), rnd(2, scale=3.0)
CLIPS = []
for max_norm, norm_type in [(0.5, 2.0), (100.0, 2.0), (0.3, math.inf), (0.5, 1.0), (0.5, 3.0)]:
    ps = [torch.zeros(3, 2, requires_grad=True), torch.zeros(2, requires_grad=True)]
    ps[0].grad, ps[1].grad = G1.clone(), G2.clone()
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type, foreach=False)
    CLIPS.append({"kind": "norm", "max_norm": max_norm, "norm_type": "inf" if norm_type == math.inf else norm_type,
                  "total": float(total), "grads": [enc(ps[0].grad), enc(ps[1].grad)]})
ps = [torch.zeros(3, 2, requires_grad=True), torch.zeros(2, requires_grad=True)]
ps[0].grad, ps[1].grad = G1.clone(), G2.clone()
torch.nn.utils.clip_grad_value_(ps, 0.4, foreach=False)
CLIPS.append({"kind": "value", "clip": 0.4, "grads": [enc(ps[0].grad), enc(ps[1].grad)]})

# ---- schedulers -------------------------------------------------------------------------------

BASE_LR = 0.1
EPOCHS = 14


def run_sched(make):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(EPOCHS):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


S = torch.optim.lr_scheduler
SCHEDULES = []
for name, params, make in [
    ("step", {"step_size": 3, "gamma": 0.5}, lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
    ("multistep", {"milestones": [3, 6, 7], "gamma": 0.1}, lambda o: S.MultiStepLR(o, milestones=[3, 6, 7], gamma=0.1)),
    ("exponential", {"gamma": 0.9}, lambda o: S.ExponentialLR(o, gamma=0.9)),
    ("cosine", {"total": 10, "min_lr": 0.001}, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
    ("polynomial", {"total": 8, "power": 2.0}, lambda o: S.PolynomialLR(o, total_iters=8, power=2.0)),
    ("polynomial_linear", {"total": 10, "power": 1.0}, lambda o: S.PolynomialLR(o, total_iters=10, power=1.0)),
]:
    SCHEDULES.append({"name": name, "params": params, "base_lr": BASE_LR, "lrs": run_sched(make)})

out = {
    "meta": {"torch": torch.__version__, "python": sys.version.split()[0], "dtype": "float64", "seed": 20240611},
    "losses": LOSSES,
    "optimizers": {"x": enc(X), "y": enc(Y), "w0": enc(W0), "b0": enc(B0), "steps": STEPS, "cases": OPTIMS},
    "schedules": SCHEDULES,
    "clip": {"g1": enc(G1), "g2": enc(G2), "cases": CLIPS},
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_optim.json")
text = json.dumps(out, separators=(",", ":"))
with open(path, "w") as f:
    f.write(text + "\n")
print(f"{len(LOSSES)} loss cases, {len(OPTIMS)} optimizer cases, {len(SCHEDULES)} schedules, {len(CLIPS)} clip cases, "
      f"{len(text) + 1} bytes")
