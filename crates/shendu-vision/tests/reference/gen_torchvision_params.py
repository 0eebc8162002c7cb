"""Writes torchvision_params.json: for each torchvision model that shendu's zoo mirrors (and
timm's dpn92, which torchvision lacks), the state_dict names and shapes in order and the
parameter count (sum of numel over parameters()).

Run from crates/shendu-vision:
    /work/scratch/peers/.venv/bin/python tests/reference/gen_torchvision_params.py
"""

import json
import os
import sys

import timm
import torch
import torchvision
from torchvision import models

MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet121",
    "mobilenet_v2",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
]

# Models torchvision does not have, from timm (same names as Cadene's pretrainedmodels).
TIMM_MODELS = ["dpn92"]
# shendu's 28x28 models, torchvision's classes reshaped (torch_zoo.py): 1x28x28 inputs, 10 classes.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_zoo import MNIST_MODELS  # noqa: E402


def describe(name):
    if name in TIMM_MODELS:
        model, source = timm.create_model(name, pretrained=False), "timm"
    elif name in MNIST_MODELS:
        model, source = MNIST_MODELS[name](), "torch_zoo.py"
    else:
        model, source = getattr(models, name)(weights=None), "torchvision"
    state = [{"name": k, "shape": list(v.shape)} for k, v in model.state_dict().items()]
    count = sum(p.numel() for p in model.parameters())
    return {"source": source, "state_dict": state, "param_count": count}


def main():
    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "python": sys.version.split()[0],
            "note": "weights=None; 3x224x224 inputs and 1000 classes except the _mnist models (1x28x28, 10)",
        },
        "models": {name: describe(name) for name in MODELS + TIMM_MODELS + list(MNIST_MODELS)},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_params.json")
    # One tensor a line: small, diffable, still plain JSON.
    lines = ["{", f' "meta": {json.dumps(out["meta"])},', ' "models": {']
    names = MODELS + TIMM_MODELS + list(MNIST_MODELS)
    for i, name in enumerate(names):
        m = out["models"][name]
        head = f'"source": "{m["source"]}", "param_count": {m["param_count"]}'
        lines.append(f'  "{name}": {{{head}, "state_dict": [')
        entries = [f"   {json.dumps(e)}" for e in m["state_dict"]]
        lines.append(",\n".join(entries))
        lines.append("  ]}" + ("," if i + 1 < len(names) else ""))
    lines.append(" }")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    for name in names:
        m = out["models"][name]
        print(f"{name}: {len(m['state_dict'])} tensors, {m['param_count']} parameters")


if __name__ == "__main__":
    main()
