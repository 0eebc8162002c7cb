#!/usr/bin/env python3
"""Writes data.json: inputs and PyTorch float64 outputs that shendu's forward ops are checked
against (tests/reference.rs, tests/reference_conv.rs). See README.md for the exact command.

Every case is {"op", "name", "params", "inputs": [{"shape", "data"}...], "output": {"shape",
"data"}}. Inputs are rounded to 6 decimals before PyTorch sees them, so the JSON holds exactly
the values both sides compute on; outputs are written with Python's shortest round-trip repr.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
GEN = torch.Generator().manual_seed(20240607)
CASES = []


def rnd(*shape, scale=1.0, lo=None, hi=None):
    """Random input, rounded to 6 decimals so the JSON value is what torch used."""
    if lo is not None:
        t = torch.rand(*shape, generator=GEN) * (hi - lo) + lo
    else:
        t = torch.randn(*shape, generator=GEN) * scale
    return torch.round(t * 1e6) / 1e6


def enc(t):
    t = t.detach().to(torch.float64).contiguous()
    data = [float(v) for v in t.reshape(-1).tolist()]
    assert all(math.isfinite(v) for v in data), "non-finite value in reference data"
    return {"shape": list(t.shape), "data": data}


def add(op, name, inputs, output, **params):
    CASES.append({"op": op, "name": name, "params": params,
                  "inputs": [enc(t) for t in inputs], "output": enc(output)})


# ---- elementwise ------------------------------------------------------------------------------

# Wide range: both sides of 0, the softplus threshold (20), relu6's 6, and ordinary values.
wide = torch.cat([torch.tensor([-30.0, -21.0, -19.5, -6.5, -0.75, 0.0, 0.25, 5.5, 6.5, 19.5, 21.0, 30.0]),
                  rnd(12, scale=3.0)])
normal = rnd(24, scale=2.0)
positive = rnd(24, lo=0.05, hi=5.0)

for name, fn, x in [
    ("neg", torch.neg, normal), ("abs", torch.abs, normal), ("exp", torch.exp, normal),
    ("log", torch.log, positive), ("sqrt", torch.sqrt, positive), ("rsqrt", torch.rsqrt, positive),
    ("sqr", torch.square, normal), ("recip", torch.reciprocal, positive),
    ("sin", torch.sin, normal), ("cos", torch.cos, normal), ("tanh", torch.tanh, wide),
    ("sigmoid", torch.sigmoid, wide), ("erf", torch.erf, normal), ("relu", F.relu, wide),
    ("relu6", F.relu6, wide), ("selu", F.selu, wide), ("gelu", F.gelu, wide),
    ("silu", F.silu, wide), ("mish", F.mish, wide), ("softplus", F.softplus, wide),
    ("sign", torch.sign, wide),
]:
    add(name, name, [x], fn(x))

add("gelu", "gelu_normal", [normal], F.gelu(normal, approximate="none"))
add("leaky_relu", "leaky_relu_0.01", [wide], F.leaky_relu(wide, 0.01), slope=0.01)
add("leaky_relu", "leaky_relu_0.1", [wide], F.leaky_relu(wide, 0.1), slope=0.1)
add("elu", "elu_1", [wide], F.elu(wide, 1.0), alpha=1.0)
add("elu", "elu_0.5", [wide], F.elu(wide, 0.5), alpha=0.5)
add("clamp", "clamp", [normal], torch.clamp(normal, -0.5, 1.25), min=-0.5, max=1.25)
add("affine", "affine", [normal], normal * 2.5 - 0.75, mul=2.5, add=-0.75)
add("powf", "powf_2.5", [positive], torch.pow(positive, 2.5), p=2.5)
add("powf", "powf_-1.5", [positive], torch.pow(positive, -1.5), p=-1.5)
add("powf", "powf_3", [normal], torch.pow(normal, 3.0), p=3.0)

a = rnd(2, 3, 4)
for name, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("maximum", torch.maximum),
                 ("minimum", torch.minimum)]:
    b = rnd(3, 1)
    add(name, name + "_bcast", [a, b], fn(a, b))
den = rnd(1, 4, lo=0.5, hi=2.0) * torch.tensor([1.0, -1.0, 1.0, -1.0])
add("div", "div_bcast", [a, den], a / den)
base = rnd(2, 3, 4, lo=0.1, hi=3.0)
ex = rnd(4, lo=-2.0, hi=2.0)
add("pow", "pow_bcast", [base, ex], torch.pow(base, ex))

# ---- reductions ---------------------------------------------------------------------------------

r = rnd(3, 4, 5)
for dims, keep in [((0,), False), ((1,), True), ((2,), False), ((0, 2), True), ((0, 1, 2), False)]:
    tag = "_".join(map(str, dims)) + ("_keep" if keep else "")
    add("sum", "sum_" + tag, [r], r.sum(dim=dims, keepdim=keep), dims=list(dims), keepdim=keep)
    add("mean", "mean_" + tag, [r], r.mean(dim=dims, keepdim=keep), dims=list(dims), keepdim=keep)
    add("max", "max_" + tag, [r], r.amax(dim=dims, keepdim=keep), dims=list(dims), keepdim=keep)
    add("min", "min_" + tag, [r], r.amin(dim=dims, keepdim=keep), dims=list(dims), keepdim=keep)
    add("logsumexp", "logsumexp_" + tag, [r], torch.logsumexp(r, dim=dims, keepdim=keep),
        dims=list(dims), keepdim=keep)
    for corr in (0, 1):
        add("var", f"var_{tag}_c{corr}", [r], torch.var(r, dim=dims, keepdim=keep, correction=corr),
            dims=list(dims), keepdim=keep, correction=corr)
        add("std", f"std_{tag}_c{corr}", [r], torch.std(r, dim=dims, keepdim=keep, correction=corr),
            dims=list(dims), keepdim=keep, correction=corr)

s = rnd(2, 3, 5, scale=3.0)
for d in range(3):
    add("softmax", f"softmax_{d}", [s], torch.softmax(s, dim=d), dim=d)
    add("log_softmax", f"log_softmax_{d}", [s], torch.log_softmax(s, dim=d), dim=d)

# ---- matmul -------------------------------------------------------------------------------------

for name, sa, sb in [("matmul_2d", (5, 7), (7, 3)), ("matmul_batched", (3, 4, 6), (3, 6, 5)),
                     ("matmul_bcast_rhs", (2, 3, 4), (4, 5)), ("matmul_bcast_batch", (2, 1, 3, 4), (5, 4, 2))]:
    x, y = rnd(*sa), rnd(*sb)
    add("matmul", name, [x, y], x @ y)

# ---- conv2d -------------------------------------------------------------------------------------


def tf_same(size, k, s, d):
    """TensorFlow's SAME padding for one spatial dim: (begin, end)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def conv_case(name, xs, ws, stride=(1, 1), dilation=(1, 1), groups=1, padding=("explicit", 0, 0, 0, 0)):
    x, w = rnd(*xs), rnd(*ws, scale=0.5)
    kind = padding[0]
    if kind == "explicit":
        t, b, l, r_ = padding[1:]
    elif kind == "same":
        t, b = tf_same(xs[2], ws[2], stride[0], dilation[0])
        l, r_ = tf_same(xs[3], ws[3], stride[1], dilation[1])
    else:
        t = b = l = r_ = 0
    if t == b and l == r_:
        out = F.conv2d(x, w, stride=stride, padding=(t, l), dilation=dilation, groups=groups)
    else:
        out = F.conv2d(F.pad(x, (l, r_, t, b)), w, stride=stride, dilation=dilation, groups=groups)
    pad = {"kind": kind}
    if kind == "explicit":
        pad.update(top=t, bottom=b, left=l, right=r_)
    add("conv2d", name, [x, w], out, stride=list(stride), dilation=list(dilation), groups=groups, padding=pad)


conv_case("conv2d_pad1", (1, 3, 7, 7), (4, 3, 3, 3), padding=("explicit", 1, 1, 1, 1))
conv_case("conv2d_stride2_pad1", (2, 3, 8, 8), (4, 3, 3, 3), stride=(2, 2), padding=("explicit", 1, 1, 1, 1))
conv_case("conv2d_groups2", (1, 4, 6, 6), (6, 2, 3, 3), groups=2, padding=("explicit", 1, 1, 1, 1))
conv_case("conv2d_depthwise", (1, 4, 6, 5), (4, 1, 3, 3), groups=4, padding=("explicit", 1, 1, 1, 1))
conv_case("conv2d_dilation2", (1, 2, 9, 9), (3, 2, 3, 3), dilation=(2, 2), padding=("explicit", 2, 2, 2, 2))
conv_case("conv2d_rect_stride", (1, 2, 7, 8), (3, 2, 1, 3), stride=(2, 1), padding=("explicit", 0, 0, 1, 1))
conv_case("conv2d_1x1", (2, 5, 3, 3), (4, 5, 1, 1))
conv_case("conv2d_asym_pad", (1, 2, 7, 6), (3, 2, 3, 3), stride=(2, 2), padding=("explicit", 1, 2, 0, 1))
conv_case("conv2d_same_s1", (1, 3, 6, 6), (2, 3, 3, 3), padding=("same",))
conv_case("conv2d_same_s2_even", (1, 2, 8, 8), (3, 2, 3, 3), stride=(2, 2), padding=("same",))
conv_case("conv2d_same_s2_odd", (1, 2, 7, 6), (3, 2, 3, 3), stride=(2, 2), padding=("same",))
conv_case("conv2d_same_k4", (1, 2, 6, 6), (2, 2, 4, 4), padding=("same",))
conv_case("conv2d_same_dil2", (1, 2, 7, 7), (2, 2, 3, 3), dilation=(2, 2), padding=("same",))
conv_case("conv2d_same_groups2_s2", (1, 4, 7, 7), (4, 2, 3, 3), stride=(2, 2), groups=2, padding=("same",))
conv_case("conv2d_valid", (1, 3, 6, 5), (2, 3, 3, 3), padding=("valid",))
conv_case("conv2d_valid_s2", (1, 2, 8, 7), (3, 2, 3, 3), stride=(2, 2), padding=("valid",))

# ---- conv_transpose2d ---------------------------------------------------------------------------


def convt_case(name, xs, ws, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1):
    x, w = rnd(*xs), rnd(*ws, scale=0.5)
    out = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding,
                             groups=groups, dilation=dilation)
    add("conv_transpose2d", name, [x, w], out, stride=list(stride), padding=list(padding),
        output_padding=list(output_padding), dilation=list(dilation), groups=groups)


convt_case("convt_s2", (1, 3, 3, 3), (3, 2, 3, 3), stride=(2, 2))
convt_case("convt_s2_p1_op1", (1, 4, 4, 4), (4, 3, 3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
convt_case("convt_groups2", (1, 4, 3, 3), (4, 2, 3, 3), stride=(2, 2), padding=(1, 1), groups=2)
convt_case("convt_k4_s2_p1", (2, 2, 3, 4), (2, 3, 4, 4), stride=(2, 2), padding=(1, 1))
convt_case("convt_dil2", (1, 2, 4, 4), (2, 2, 3, 3), dilation=(2, 2), padding=(1, 1))
convt_case("convt_rect", (1, 2, 3, 4), (2, 3, 2, 3), stride=(2, 3), padding=(0, 1), output_padding=(1, 2))

# ---- pooling ------------------------------------------------------------------------------------

p = rnd(2, 2, 7, 7)
for name, k, st, pd, ceil in [("max_k2s2", 2, 2, 0, False), ("max_k3s2p1", 3, 2, 1, False),
                              ("max_k2s2_ceil", 2, 2, 0, True), ("max_k3s2p1_ceil", 3, 2, 1, True),
                              ("max_k3s1p1", 3, 1, 1, False)]:
    add("max_pool2d", name, [p], F.max_pool2d(p, k, st, pd, ceil_mode=ceil),
        kernel=[k, k], stride=[st, st], padding=[pd, pd], ceil_mode=ceil)

for name, k, st, pd, ceil, cip in [("avg_k2s2", 2, 2, 0, False, True), ("avg_k3s2p1_incl", 3, 2, 1, False, True),
                                   ("avg_k3s2p1_excl", 3, 2, 1, False, False),
                                   ("avg_k2s2_ceil", 2, 2, 0, True, True),
                                   ("avg_k3s2p1_ceil_incl", 3, 2, 1, True, True),
                                   ("avg_k3s2p1_ceil_excl", 3, 2, 1, True, False)]:
    add("avg_pool2d", name, [p], F.avg_pool2d(p, k, st, pd, ceil_mode=ceil, count_include_pad=cip),
        kernel=[k, k], stride=[st, st], padding=[pd, pd], ceil_mode=ceil, count_include_pad=cip)

q = rnd(1, 2, 7, 5)
for oh, ow in [(3, 2), (1, 1), (4, 4), (7, 5)]:
    add("adaptive_avg_pool2d", f"adaptive_{oh}x{ow}", [q], F.adaptive_avg_pool2d(q, (oh, ow)), output_size=[oh, ow])

# ---- upsampling ---------------------------------------------------------------------------------

u = rnd(1, 2, 3, 4)
for oh, ow in [(6, 8), (5, 7), (7, 9)]:
    add("upsample_nearest2d", f"nearest_{oh}x{ow}", [u], F.interpolate(u, size=(oh, ow), mode="nearest"),
        size=[oh, ow])
    for ac in (False, True):
        add("upsample_bilinear2d", f"bilinear_{oh}x{ow}_ac{int(ac)}", [u],
            F.interpolate(u, size=(oh, ow), mode="bilinear", align_corners=ac), size=[oh, ow], align_corners=ac)

out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.json")
meta = {"generator": "tests/reference/generate.py", "python": sys.version.split()[0], "torch": torch.__version__,
        "dtype": "float64", "seed": 20240607}
with open(out_path, "w") as f:
    json.dump({"meta": meta, "cases": CASES}, f, separators=(",", ":"))
    f.write("\n")
print(f"{len(CASES)} cases, {os.path.getsize(out_path)} bytes -> {out_path}")
