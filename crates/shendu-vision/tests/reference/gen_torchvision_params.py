"""Writes torchvision_params.json: for each torchvision model that shendu's zoo mirrors, the
state_dict names and shapes in order and the parameter count (sum of numel over parameters()).

Run from crates/shendu-vision:
    /work/scratch/peers/.venv/bin/python tests/reference/gen_torchvision_params.py
"""

import json
import os
import sys

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


def describe(name):
    model = getattr(models, name)(weights=None)
    state = [{"name": k, "shape": list(v.shape)} for k, v in model.state_dict().items()]
    count = sum(p.numel() for p in model.parameters())
    return {"state_dict": state, "param_count": count}


def main():
    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": sys.version.split()[0],
            "note": "weights=None, 1000 classes, 3-channel input",
        },
        "models": {name: describe(name) for name in MODELS},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_params.json")
    # One tensor a line: small, diffable, still plain JSON.
    lines = ["{", f' "meta": {json.dumps(out["meta"])},', ' "models": {']
    for i, name in enumerate(MODELS):
        m = out["models"][name]
        lines.append(f'  "{name}": {{"param_count": {m["param_count"]}, "state_dict": [')
        entries = [f"   {json.dumps(e)}" for e in m["state_dict"]]
        lines.append(",\n".join(entries))
        lines.append("  ]}" + ("," if i + 1 < len(MODELS) else ""))
    lines.append(" }")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    for name in MODELS:
        m = out["models"][name]
        print(f"{name}: {len(m['state_dict'])} tensors, {m['param_count']} parameters")


if __name__ == "__main__":
    main()
