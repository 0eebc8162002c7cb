#!/usr/bin/env python3
"""Writes layers.json: PyTorch float64 forward outputs and gradients of shendu-nn's layers, which
tests/layers.rs checks against. See README.md for the exact command.

Every case is {"name", "layer", "config", "params": {name: tensor}, "input": tensor,
"grad_out": tensor, "output": tensor, "grads": {"input" | param name: tensor}} with tensors as
{"shape", "data"} (row-major). The loss whose gradients are stored is sum(output * grad_out).
BatchNorm cases add "input2" (a second train step), "running" (buffers after both steps) and
"eval_output" / "eval_grads" (eval mode on the first input, after the two steps).

Inputs, weights and grad_out come from numpy's seeded generator and are rounded to 6 decimals, so
the JSON holds exactly the values both sides compute on.
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
RNG = np.random.default_rng(20240917)
CASES = []


def rnd(*shape, scale=1.0, shift=0.0):
    a = RNG.standard_normal(shape) * scale + shift
    return torch.tensor(np.round(a, 6), dtype=torch.float64)


def enc(t):
    t = t.detach().contiguous()
    data = t.reshape(-1).tolist()
    return {"shape": list(t.shape), "data": data}


def same_pads(size, k, s, d):
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def set_params(module, scales=None):
    """Fresh rounded random values for each named parameter; returns them encoded."""
    out = {}
    for name, p in module.named_parameters():
        scale = (scales or {}).get(name, 0.5)
        with torch.no_grad():
            p.copy_(rnd(*p.shape, scale=scale))
        out[name] = enc(p)
    return out


def run(module, x, fn=None):
    """Forward (through fn when the layer needs padding torch lacks), loss, backward."""
    fn = fn or module
    x = x.clone().requires_grad_(x.is_floating_point())
    y = fn(x)
    g = rnd(*y.shape)
    module.zero_grad()
    (y * g).sum().backward()
    grads = {name: enc(p.grad) for name, p in module.named_parameters()}
    if x.is_floating_point():
        grads["input"] = enc(x.grad)
    return y, g, grads


def add(name, layer, config, module, x, fn=None, **extra):
    params = set_params(module, extra.pop("scales", None)) if list(module.parameters()) else {}
    y, g, grads = run(module, x, fn)
    case = {"name": name, "layer": layer, "config": config, "params": params, "input": enc(x),
            "grad_out": enc(g), "output": enc(y), "grads": grads}
    case.update(extra)
    CASES.append(case)


# ---- Conv2d ----------------------------------------------------------------------------------

def conv_case(name, cin, cout, k, x_hw, n=2, stride=(1, 1), padding="valid", dilation=(1, 1), groups=1, bias=True):
    kh, kw = k
    h, w = x_hw
    if padding == "same" and stride == (1, 1):
        # PyTorch's own padding="same" (stride 1 only) must agree with the TF rule.
        conv = nn.Conv2d(cin, cout, (kh, kw), padding="same", dilation=dilation, groups=groups, bias=bias)
        fn = conv
    else:
        conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, dilation=dilation, groups=groups, bias=bias)
        if padding == "same":
            t, b = same_pads(h, kh, stride[0], dilation[0])
            l, r = same_pads(w, kw, stride[1], dilation[1])
        elif padding == "valid":
            t, b, l, r = 0, 0, 0, 0
        else:
            t, b, l, r = padding
        fn = lambda x: conv(F.pad(x, (l, r, t, b)))  # noqa: E731
    config = {"in": cin, "out": cout, "kernel": [kh, kw], "stride": list(stride), "dilation": list(dilation),
              "groups": groups, "bias": bias, "padding": padding if isinstance(padding, str) else list(padding)}
    add(name, "Conv2d", config, conv, rnd(n, cin, h, w), fn)


conv_case("conv_basic_pad1", 3, 4, (3, 3), (7, 7), padding=[1, 1, 1, 1])
conv_case("conv_stride2_same", 4, 6, (3, 3), (8, 9), stride=(2, 2), padding="same")
conv_case("conv_same_even_kernel", 2, 3, (4, 4), (6, 7), padding="same")
conv_case("conv_same_dilated", 2, 3, (3, 3), (7, 6), padding="same", dilation=(2, 2))
conv_case("conv_valid_dilation", 3, 5, (3, 3), (9, 8), n=1, dilation=(2, 2))
conv_case("conv_groups_asym", 6, 4, (3, 2), (7, 6), stride=(2, 1), padding=[1, 0, 2, 1], groups=2, bias=False)
conv_case("conv_depthwise", 4, 8, (3, 3), (8, 8), stride=(2, 2), padding=[1, 1, 1, 1], groups=4)
conv_case("conv_1x1", 5, 3, (1, 1), (4, 5))


# ---- ConvTranspose2d -------------------------------------------------------------------------

def convt_case(name, cin, cout, k, x_hw, stride=1, padding=0, output_padding=0, dilation=1, groups=1, bias=True):
    m = nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=padding, output_padding=output_padding,
                           dilation=dilation, groups=groups, bias=bias)
    config = {"in": cin, "out": cout, "kernel": [k, k], "stride": stride, "padding": padding,
              "output_padding": output_padding, "dilation": dilation, "groups": groups, "bias": bias}
    add(name, "ConvTranspose2d", config, m, rnd(2, cin, *x_hw))


convt_case("convt_stride2_outpad", 4, 6, 3, (4, 5), stride=2, padding=1, output_padding=1)
convt_case("convt_groups_dilated", 4, 6, 3, (3, 4), stride=2, output_padding=1, dilation=2, groups=2, bias=False)
convt_case("convt_plain", 3, 2, 2, (3, 3))


# ---- BatchNorm -------------------------------------------------------------------------------

def bn_case(name, layer, c, shape, momentum=0.1, affine=True, eps=1e-5):
    cls = nn.BatchNorm1d if layer == "BatchNorm1d" else nn.BatchNorm2d
    m = cls(c, eps=eps, momentum=momentum, affine=affine)
    params = {}
    if affine:
        with torch.no_grad():
            m.weight.copy_(rnd(c, scale=0.3, shift=1.0))
            m.bias.copy_(rnd(c, scale=0.3))
        params = {"weight": enc(m.weight), "bias": enc(m.bias)}
    # Non-zero means and non-unit spreads so that the running statistics move visibly.
    x1, x2 = rnd(*shape, scale=1.5, shift=0.7), rnd(*shape, scale=0.8, shift=-0.4)
    m.train()
    y, g, grads = run(m, x1)
    m(x2)
    running = {"running_mean": enc(m.running_mean), "running_var": enc(m.running_var),
               "num_batches_tracked": int(m.num_batches_tracked)}
    m.eval()
    ye, ge, grads_e = run(m, x1)
    config = {"num_features": c, "momentum": momentum, "affine": affine, "eps": eps}
    CASES.append({"name": name, "layer": layer, "config": config, "params": params, "input": enc(x1),
                  "grad_out": enc(g), "output": enc(y), "grads": grads, "input2": enc(x2), "running": running,
                  "eval_grad_out": enc(ge), "eval_output": enc(ye), "eval_grads": grads_e})


bn_case("bn1d_nc", "BatchNorm1d", 5, (8, 5))
bn_case("bn1d_ncl", "BatchNorm1d", 4, (3, 4, 6), momentum=0.3)
bn_case("bn2d", "BatchNorm2d", 3, (4, 3, 5, 5))
bn_case("bn2d_no_affine_cumulative", "BatchNorm2d", 2, (2, 2, 3, 4), momentum=None, affine=False, eps=1e-3)


# ---- pools -----------------------------------------------------------------------------------

def pool_case(name, layer, module, x, config):
    add(name, layer, config, module, x)


pool_case("maxpool_k3s2p1", "MaxPool2d", nn.MaxPool2d(3, 2, padding=1), rnd(2, 3, 9, 8),
          {"kernel": 3, "stride": 2, "padding": 1, "dilation": 1, "ceil_mode": False})
pool_case("maxpool_dilated_ceil", "MaxPool2d", nn.MaxPool2d(3, 2, dilation=2, ceil_mode=True), rnd(1, 2, 10, 11),
          {"kernel": 3, "stride": 2, "padding": 0, "dilation": 2, "ceil_mode": True})
pool_case("maxpool_default", "MaxPool2d", nn.MaxPool2d(2), rnd(2, 2, 6, 5),
          {"kernel": 2, "stride": 2, "padding": 0, "dilation": 1, "ceil_mode": False})
pool_case("avgpool_include_pad", "AvgPool2d", nn.AvgPool2d(3, 2, padding=1), rnd(2, 3, 9, 8),
          {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": False, "count_include_pad": True})
pool_case("avgpool_exclude_pad_ceil", "AvgPool2d", nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
          rnd(1, 2, 8, 7), {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False})
pool_case("adaptive_avg_3x4", "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d((3, 4)), rnd(2, 3, 7, 10), {"output": [3, 4]})
pool_case("global_avg", "GlobalAvgPool2d", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), rnd(2, 3, 5, 6),
          {"keepdim": False})


# ---- Embedding, ChannelShuffle, Upsample -----------------------------------------------------

emb = nn.Embedding(10, 4)
idx = torch.tensor([[1, 2, 9, 0], [1, 1, 7, 2], [3, 9, 9, 9]], dtype=torch.int64)
add("embedding", "Embedding", {"num": 10, "dim": 4}, emb, idx, scales={"weight": 1.0})

add("channel_shuffle_g3", "ChannelShuffle", {"groups": 3}, nn.ChannelShuffle(3), rnd(2, 6, 3, 2))


def up_case(name, x, mode, scale=None, size=None, align_corners=None):
    m = nn.Upsample(scale_factor=scale, size=size, mode=mode, align_corners=align_corners)
    config = {"mode": mode, "scale": scale, "size": list(size) if size else None, "align_corners": bool(align_corners)}
    add(name, "Upsample", config, m, x)


up_case("upsample_nearest_x2", rnd(1, 2, 3, 4), "nearest", scale=2.0)
up_case("upsample_nearest_size", rnd(1, 2, 3, 4), "nearest", size=(6, 12))
up_case("upsample_bilinear_x2", rnd(2, 2, 3, 4), "bilinear", scale=2.0, align_corners=False)
up_case("upsample_bilinear_x3_corners", rnd(1, 3, 3, 4), "bilinear", scale=3.0, align_corners=True)
up_case("upsample_bilinear_size", rnd(1, 2, 3, 4), "bilinear", size=(5, 7), align_corners=False)


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.json")
    doc = {"meta": {"torch": torch.__version__, "numpy": np.__version__, "seed": 20240917}, "cases": CASES}
    text = json.dumps(doc, separators=(",", ":"))
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"{len(CASES)} cases, {len(text)} bytes")
