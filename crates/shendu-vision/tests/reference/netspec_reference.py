"""Reference outputs for shendu's NetSpec builder (crates/shendu-vision/tests/netspec_reference.rs).

Each case is a small network written twice: as a NetSpec in the Rust test and here, where the
Darknet-specific layers are literal translations of AlexeyAB's C loops (maxpool, local_avgpool,
reorg_cpu, shortcut_multilayer_cpu, upsample_cpu, crop, softmax_cpu, yolo) and the rest is
PyTorch (conv, batch norm, linear, activations). The script seeds its own weights and inputs and
writes inputs, weights (under the Rust parameter names), expected outputs and decoded yolo boxes
to netspec_reference.safetensors, all float64.

Run: /work/scratch/peers/.venv/bin/python netspec_reference.py   (torch 2.x, numpy, safetensors)
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20240605)
torch.set_default_dtype(torch.float64)
OUT = {}
FLT_MAX = 3.4028234663852886e38


def put(case, key, t):
    OUT[f"{case}.{key}"] = torch.as_tensor(t, dtype=torch.float64).detach().clone().contiguous()


def param(case, name, t):
    put(case, "p." + name, t)
    return t


def rnd(*shape, scale=1.0):
    return torch.randn(*shape) * scale


# ---- Darknet's activations (AlexeyAB src/activations.h) ---------------------------------------
def act(name, x):
    if name == "logistic":
        return 1 / (1 + torch.exp(-x))
    if name == "relu":
        return x * (x > 0)
    if name == "relu6":
        return torch.clamp(x, 0, 6)
    if name == "leaky":
        return torch.where(x > 0, x, 0.1 * x)
    if name == "linear":
        return x
    if name == "tanh":
        return 2 / (1 + torch.exp(-2 * x)) - 1
    if name == "elu":
        return (x >= 0) * x + (x < 0) * (torch.exp(x) - 1)
    if name == "selu":
        return (x >= 0) * 1.0507 * x + (x < 0) * 1.0507 * 1.6732 * (torch.exp(x) - 1)
    if name == "swish":
        return x / (1 + torch.exp(-x))
    if name == "mish":
        sp = torch.where(x > 20, x, torch.where(x < -20, torch.exp(x), torch.log1p(torch.exp(x))))
        return x * torch.tanh(sp)
    if name == "hard_mish":
        return torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x)))
    if name == "gelu":
        return 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x**3))
    raise ValueError(name)


# ---- Darknet's layers as loops ----------------------------------------------------------------
def maxpool(x, size, stride, pad):
    b, c, h, w = x.shape
    oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    off = -(pad // 2)
    y = np.zeros((b, c, oh, ow))
    xs = x.numpy()
    for bi in range(b):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    best = -FLT_MAX
                    for n in range(size):
                        for m in range(size):
                            ch, cw = off + i * stride + n, off + j * stride + m
                            valid = 0 <= ch < h and 0 <= cw < w
                            v = xs[bi, k, ch, cw] if valid else -FLT_MAX
                            best = max(best, v)
                    y[bi, k, i, j] = best
    return torch.from_numpy(y)


def local_avgpool(x, size, stride, pad):
    b, c, h, w = x.shape
    oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    off = -(pad // 2)
    y = np.zeros((b, c, oh, ow))
    xs = x.numpy()
    for bi in range(b):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    acc, count = 0.0, 0
                    for n in range(size):
                        for m in range(size):
                            ch, cw = off + i * stride + n, off + j * stride + m
                            if 0 <= ch < h and 0 <= cw < w:
                                acc += xs[bi, k, ch, cw]
                                count += 1
                    y[bi, k, i, j] = acc / count
    return torch.from_numpy(y)


def reorg_cpu(x, w, h, c, batch, stride, forward):
    """src/blas.c reorg_cpu on flat arrays; returns the flat output."""
    xs = x.reshape(-1).numpy()
    out = np.zeros_like(xs)
    out_c = c // (stride * stride)
    for b in range(batch):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2 = k % out_c
                    offset = k // out_c
                    w2 = i * stride + offset % stride
                    h2 = j * stride + offset // stride
                    out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * b))
                    if forward:
                        out[out_index] = xs[in_index]
                    else:
                        out[in_index] = xs[out_index]
    return torch.from_numpy(out)


def reorg(x, stride, reverse):
    """[reorg] = AlexeyAB's reorg_old layer: reorg_cpu(input, l.w, l.h, l.c, ..., reverse)."""
    b, c, h, w = x.shape
    flat = reorg_cpu(x, w, h, c, b, stride, 1 if reverse else 0)
    if reverse:
        return flat.reshape(b, c // (stride * stride), h * stride, w * stride)
    return flat.reshape(b, c * stride * stride, h // stride, w // stride)


def upsample(x, stride, scale):
    b, c, h, w = x.shape
    if stride > 0:
        y = np.zeros((b, c, h * stride, w * stride))
        xs = x.numpy()
        for j in range(h * stride):
            for i in range(w * stride):
                y[:, :, j, i] = scale * xs[:, :, j // stride, i // stride]
        return torch.from_numpy(y)
    s = -stride
    oh, ow = h // s, w // s
    y = np.zeros((b, c, oh, ow))
    xs = x.numpy()
    # upsample_cpu(l.output, out_w, out_h, c, batch, s, forward=0, scale, input): in += scale * out
    for j in range(oh * s):
        for i in range(ow * s):
            y[:, :, j // s, i // s] += scale * xs[:, :, j, i]
    return torch.from_numpy(y)


def shortcut(prev, froms, weights, per_channel, norm):
    """shortcut_multilayer_cpu for equal shapes."""
    n = len(froms)
    b, c, h, w = prev.shape
    ins = [prev] + froms
    if weights is None:
        return sum(ins)
    wv = weights.reshape(n + 1, c if per_channel else 1)
    out = torch.zeros_like(prev)
    for ch in range(c):
        col = wv[:, ch if per_channel else 0]
        if norm == "relu":
            s = 0.0001 + sum(max(float(v), 0.0) for v in col)
            ws = [max(float(v), 0.0) / s for v in col]
        elif norm == "softmax":
            mx = max(float(v) for v in col)
            s = 0.0001 + sum(math.exp(float(v) - mx) for v in col)
            ws = [math.exp(float(v) - mx) / s for v in col]
        else:
            ws = [float(v) for v in col]
        for i, t in enumerate(ins):
            out[:, ch] += t[:, ch] * ws[i]
    return out


def route(ins, groups=1, group_id=0, sl=None):
    parts = []
    for t in ins:
        cg = t.shape[1] // groups
        parts.append(t[:, group_id * cg:(group_id + 1) * cg])
    y = torch.cat(parts, 1)
    return y[:, sl[0]:sl[1]] if sl else y


def softmax(x, groups, temp):
    b = x.shape[0]
    flat = x.reshape(b, -1).numpy()
    n = flat.shape[1] // groups
    out = np.zeros_like(flat)
    for bi in range(b):
        for g in range(groups):
            v = flat[bi, g * n:(g + 1) * n]
            largest = v.max()
            e = np.exp(v / temp - largest / temp)
            out[bi, g * n:(g + 1) * n] = e / e.sum()
    return torch.from_numpy(out).reshape(x.shape)


def crop_eval(x, ch, cw, noadjust=False):
    b, c, h, w = x.shape
    dh, dw = (h - ch) // 2, (w - cw) // 2
    y = x[:, :, dh:dh + ch, dw:dw + cw]
    return y if noadjust else y * 2 - 1


def yolo_forward(x, n_anchors, scale_x_y):
    b, c, h, w = x.shape
    y = x.clone().reshape(b, n_anchors, c // n_anchors, h, w)
    y[:, :, 0:2] = 1 / (1 + torch.exp(-y[:, :, 0:2]))
    y[:, :, 0:2] = y[:, :, 0:2] * scale_x_y - 0.5 * (scale_x_y - 1)
    y[:, :, 4:] = 1 / (1 + torch.exp(-y[:, :, 4:]))
    return y.reshape(b, c, h, w)


def yolo_detections(out, classes, mask, anchors, netw, neth, thresh):
    """get_yolo_detections + get_yolo_box for image 0 (cells outer, anchors inner)."""
    _, c, lh, lw = out.shape
    p = out[0].reshape(len(mask), 5 + classes, lh * lw)
    boxes, objs, probs = [], [], []
    for i in range(lw * lh):
        row, col = i // lw, i % lw
        for n in range(len(mask)):
            obj = float(p[n, 4, i])
            if obj > thresh:
                boxes.append([
                    (col + float(p[n, 0, i])) / lw,
                    (row + float(p[n, 1, i])) / lh,
                    math.exp(float(p[n, 2, i])) * anchors[mask[n]][0] / netw,
                    math.exp(float(p[n, 3, i])) * anchors[mask[n]][1] / neth,
                ])
                objs.append(obj)
                probs.append([obj * float(p[n, 5 + j, i]) if obj * float(p[n, 5 + j, i]) > thresh else 0.0 for j in range(classes)])
    return torch.tensor(boxes), torch.tensor(objs), torch.tensor(probs)


def conv(x, w, b=None, stride=(1, 1), pad=0, dilation=1, groups=1):
    return F.conv2d(x, w, b, stride=stride, padding=pad * dilation, dilation=dilation, groups=groups)


def bn_params(case, prefix, c):
    g = param(case, f"{prefix}.weight", 1 + 0.2 * rnd(c))
    b = param(case, f"{prefix}.bias", 0.2 * rnd(c))
    m = param(case, f"{prefix}.running_mean", 0.3 * rnd(c))
    v = param(case, f"{prefix}.running_var", 0.5 + torch.rand(c))
    return g, b, m, v


# ---- cases ------------------------------------------------------------------------------------
def case_conv_bn_leaky():
    k = "conv_bn_leaky"
    x = put_in(k, rnd(2, 3, 6, 6))
    w = param(k, "0.weight", 0.3 * rnd(4, 3, 3, 3))
    g, b, m, v = bn_params(k, "0.bn", 4)
    y = conv(x, w, pad=1)
    put(k, "output", act("leaky", F.batch_norm(y, m, v, g, b, training=False, eps=1e-5)))
    rm, rv = m.clone(), v.clone()
    put(k, "output_train", act("leaky", F.batch_norm(y, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)))
    put(k, "running_mean_after", rm)
    put(k, "running_var_after", rv)


def case_connected_bn():
    k = "connected_bn"
    x = put_in(k, rnd(4, 2, 2, 2))
    w = param(k, "0.weight", 0.3 * rnd(3, 8))
    g, b, m, v = bn_params(k, "0.bn", 3)
    y = x.reshape(4, 8) @ w.T
    put(k, "output", act("leaky", F.batch_norm(y, m, v, g, b, training=False, eps=1e-5)))
    put(k, "output_train", act("leaky", F.batch_norm(y, m.clone(), v.clone(), g, b, training=True, momentum=0.1, eps=1e-5)))


def put_in(case, x):
    put(case, "input", x)
    return x


def case_pools():
    for name, fn, shape, size, stride in [
        ("maxpool_2s1", maxpool, (1, 2, 5, 5), 2, 1),
        ("maxpool_2s2_odd", maxpool, (1, 2, 5, 5), 2, 2),
        ("maxpool_3s2", maxpool, (1, 2, 6, 6), 3, 2),
        ("local_avgpool_3s2", local_avgpool, (1, 2, 6, 6), 3, 2),
        ("local_avgpool_2s1", local_avgpool, (1, 2, 5, 5), 2, 1),
    ]:
        x = put_in(name, rnd(*shape))
        put(name, "output", fn(x, size, stride, size - 1))


def case_mixed():
    k = "mixed"
    x = put_in(k, rnd(2, 3, 6, 6))
    l0 = conv(x, param(k, "0.weight", 0.4 * rnd(4, 3, 1, 1)), param(k, "0.bias", 0.1 * rnd(4)))
    l1 = act("leaky", conv(l0, param(k, "1.weight", 0.3 * rnd(4, 4, 3, 3)), param(k, "1.bias", 0.1 * rnd(4)), pad=1))
    l2 = shortcut(l1, [l0], param(k, "2.weight", rnd(2, 4)), True, "softmax")
    l3 = act("leaky", shortcut(l2, [l0, l1], param(k, "3.weight", torch.tensor([0.7, -0.3, 1.4])), False, "relu"))
    l4 = route([l3, l0], groups=2, group_id=1)
    l5 = route([l4, l1], sl=(2, 6))
    l6 = upsample(l5, 2, 1.0)
    l7 = reorg(l6, 2, False)
    n, c, h, w = l7.shape
    l8 = l7.reshape(n, 4, c // 4, h, w).transpose(1, 2).reshape(n, c, h, w)
    l9 = l8.mean(dim=(2, 3), keepdim=True)
    l10 = act("logistic", l8 * l9)
    l11 = l10
    l12 = crop_eval(l11, 4, 4)
    g, b, m, v = bn_params(k, "13", 16)
    l13 = F.batch_norm(l12, m, v, g, b, training=False, eps=1e-5)
    l14 = act("mish", l13)
    l15 = l14.reshape(2, -1) @ param(k, "15.weight", 0.1 * rnd(5, 256)).T + param(k, "15.bias", 0.1 * rnd(5))
    l16 = softmax(l15.reshape(2, 5, 1, 1), 1, 2.0)
    put(k, "output", l16.reshape(2, 5))
    put(k, "logits", l15 / 2.0)


def case_small_layers():
    k = "reorg_fwd"
    x = put_in(k, rnd(1, 8, 4, 4))
    put(k, "output", reorg(x, 2, False))
    k = "reorg_reverse"
    x = put_in(k, rnd(1, 8, 3, 3))
    put(k, "output", reorg(x, 2, True))
    k = "upsample_neg"
    x = put_in(k, rnd(1, 2, 5, 5))
    put(k, "output", upsample(x, -2, 0.5))
    k = "upsample_scale"
    x = put_in(k, rnd(1, 2, 3, 2))
    put(k, "output", upsample(x, 3, 0.25))
    k = "softmax_groups"
    x = put_in(k, rnd(2, 4, 2, 2))
    put(k, "output", softmax(x, 4, 0.5))
    k = "crop_noadjust"
    x = put_in(k, rnd(1, 2, 7, 6))
    put(k, "output", crop_eval(x, 4, 3, noadjust=True))
    k = "conv_geom"
    x = put_in(k, rnd(1, 4, 9, 9))
    w = param(k, "0.weight", 0.3 * rnd(4, 2, 3, 3))
    put(k, "output", conv(x, w, None, stride=(1, 2), pad=1, dilation=2, groups=2))


def case_dirac():
    k = "dirac"
    x = put_in(k, rnd(2, 3, 5, 5))
    w = param(k, "0.weight", 0.3 * rnd(4, 3, 3, 3))
    alpha = param(k, "0.alpha", 1 + 0.2 * rnd(4))
    beta = param(k, "0.beta", 0.1 + 0.05 * rnd(4))
    bias = param(k, "0.bias", 0.1 * rnd(4))
    delta = torch.nn.init.dirac_(torch.empty(4, 3, 3, 3))
    wn = F.normalize(w.reshape(4, -1)).reshape_as(w)
    kernel = alpha.view(-1, 1, 1, 1) * delta + beta.view(-1, 1, 1, 1) * wn
    put(k, "output", act("relu", conv(x, kernel, bias, pad=1)))


def case_yolo():
    k = "yolo"
    x = put_in(k, rnd(1, 3, 4, 4))
    y0 = conv(x, param(k, "0.weight", 0.8 * rnd(14, 3, 1, 1)), param(k, "0.bias", 0.5 * rnd(14)))
    out = yolo_forward(y0, 2, 1.05)
    put(k, "output", out)
    anchors = [(1.0, 1.5), (2.0, 3.0), (3.5, 2.0)]
    boxes, objs, probs = yolo_detections(out, 2, [1, 2], anchors, 4, 4, 0.3)
    put(k, "boxes", boxes)
    put(k, "objectness", objs)
    put(k, "probs", probs)


def case_activations():
    x = torch.linspace(-5, 5, 24).reshape(1, 1, 4, 6)
    for name in ["logistic", "relu", "relu6", "leaky", "linear", "tanh", "elu", "selu", "swish", "mish", "hard_mish", "gelu"]:
        k = "act_" + name
        put(k, "input", x)
        put(k, "output", act(name, x))


case_conv_bn_leaky()
case_connected_bn()
case_pools()
case_mixed()
case_small_layers()
case_dirac()
case_yolo()
case_activations()
save_file(OUT, os.path.join(os.path.dirname(os.path.abspath(__file__)), "netspec_reference.safetensors"))
print(f"{len(OUT)} tensors")
