"""Runs the zoo's NetSpecs in PyTorch with the reference models' weights and compares outputs.

Parameter names and shapes (tests/zoo.rs) cannot tell whether a ReLU sits before or after a sum,
which half of a split goes through a branch or how a shuffle permutes; this can. It interprets
the spec dump of `cargo test -p shendu-vision --test zoo dump_specs -- --ignored` with the
semantics NetSpec documents (Darknet's pooling padding, route groups and slices, shortcut then
activation, torchvision's channel shuffle), loads the reference model's state dict by name (with
random batch-norm statistics so that misnamed buffers show), and compares with the model's own
eval-mode output.

    cd crates/shendu-vision && /work/scratch/peers/.venv/bin/python tests/reference/check_zoo_forward.py
"""

import json
import os
import sys

import timm
import torch
import torch.nn.functional as F
from torchvision import models

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_zoo import MNIST_MODELS  # noqa: E402

ACT = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "logistic": torch.sigmoid,
}


def reference_model(name):
    if name == "dpn92":
        return timm.create_model(name, pretrained=False)
    if name in MNIST_MODELS:
        return MNIST_MODELS[name]()
    if hasattr(models, name):
        return getattr(models, name)(weights=None)
    return None


def pool_pad(x, p, value):
    # Darknet pads `padding` cells in total: half before, the rest after.
    return F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2), value=value)


def run(spec, x, sd, eps):
    outs = []
    for i, l in enumerate(spec["layers"]):
        prev = outs[-1] if outs else x
        t = l["type"]
        name, bn_name = l["name"], l["bn_name"]
        if t == "conv":
            w = sd[f"{name}.weight"]
            if l["dirac"]:
                flat = w.flatten(1)
                w = (flat / flat.norm(dim=1, keepdim=True)).view_as(w) * sd[f"{name}.beta"].view(-1, 1, 1, 1)
                eye = torch.zeros_like(w)
                for c in range(min(w.shape[0], w.shape[1])):
                    eye[c, c, w.shape[2] // 2, w.shape[3] // 2] = 1
                w = w + eye * sd[f"{name}.alpha"].view(-1, 1, 1, 1)
            b = sd.get(f"{name}.bias") if l["bias"] and not l["bn"] else None
            y = F.conv2d(prev, w, b, l["stride"], l["padding"] * l["dilation"], l["dilation"], l["groups"])
            if l["bn"]:
                y = bn(y, sd, bn_name, eps)
            y = ACT[l["act"]](y)
        elif t == "fc":
            y = F.linear(prev.flatten(1), sd[f"{name}.weight"], sd.get(f"{name}.bias") if l["bias"] else None)
            y = ACT[l["act"]](y)[:, :, None, None]
        elif t == "maxpool":
            y = F.max_pool2d(pool_pad(prev, l["padding"], float("-inf")), l["size"], l["stride"])
        elif t == "local_avgpool":
            ones = torch.ones_like(prev[:, :1])
            num = F.avg_pool2d(pool_pad(prev, l["padding"], 0.0), l["size"], l["stride"])
            den = F.avg_pool2d(pool_pad(ones, l["padding"], 0.0), l["size"], l["stride"])
            y = num / den
        elif t == "avgpool":
            y = prev.mean((2, 3), keepdim=True)
        elif t == "route":
            parts = [outs[j].chunk(l["groups"], 1)[l["group_id"]] for j in l["layers"]]
            y = torch.cat(parts, 1)
            if l["slice"] is not None:
                y = y[:, l["slice"][0] : l["slice"][1]]
        elif t == "shortcut":
            y = prev
            for j in l["from"]:
                y = y + outs[j]
            y = ACT[l["act"]](y)
        elif t == "dropout":
            y = prev
        elif t == "batchnorm":
            y = bn(prev, sd, name, eps)
        elif t == "activation":
            y = ACT[l["act"]](prev)
        elif t == "channel_shuffle":
            n, c, h, w_ = prev.shape
            g = l["groups"]
            y = prev.view(n, g, c // g, h, w_).transpose(1, 2).reshape(n, c, h, w_)
        else:
            raise ValueError(f"layer {i}: {t}")
        outs.append(y)
    return outs[-1].flatten(1)


def bn(x, sd, p, eps):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, eps.get(p, 1e-5))


def main():
    path = os.path.join(HERE, "..", "..", "..", "..", "target", "zoo_specs.json")
    specs = json.load(open(path))
    torch.manual_seed(0)
    failed = 0
    for name, spec in specs.items():
        model = reference_model(name)
        if model is None:
            continue
        model.eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
            eps = {n: m.eps for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
            x = torch.randn(2, *spec["input"], dtype=torch.float64)
            model = model.double()
            want = model(x)
            got = run(spec, x, model.state_dict(), eps)
            err = ((got - want).abs().max() / want.abs().max()).item()
        ok = err < 1e-9
        failed += not ok
        print(f"{name:>20}: max relative difference {err:.2e} {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
