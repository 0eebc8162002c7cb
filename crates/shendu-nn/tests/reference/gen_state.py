"""Writes torch_state.safetensors: a PyTorch-style state dict for tests/state_interop.rs.

Run from this folder: /work/scratch/peers/.venv/bin/python gen_state.py
(torch 2.15, safetensors 0.8). Every value is arange-based and exactly representable in its
dtype, so the Rust test states the same formulas and compares exactly:
    features.0.weight   f32  [3, 4]  arange(12) * 0.25 - 1
    features.0.bias     f32  [3]     [0.5, -0.5, 1.5]
    features.1.weight   f32  [3]     ones (BatchNorm1d-style affine)
    features.1.bias     f32  [3]     zeros
    features.1.running_mean f32 [3]  arange(3) * 0.125
    features.1.running_var  f32 [3]  arange(3) + 1
    features.1.num_batches_tracked i64 []  7
    classifier.weight   f16  [2, 3]  arange(6) * 0.5 - 1.25
    classifier.bias     bf16 [2]     [0.5, -2.0]
    extra.scale         f64  [2, 2]  arange(4) / 8 + 1e-3   (f64-only value)
    extra.mask          u8   [5]     [0, 1, 255, 3, 4]
    extra.index         i32  [3]     [-3, 0, 2147483647]  (shendu widens I32 to i64)
Metadata: {"format": "pt", "source": "gen_state.py", "epoch": "12"}.
"""
from collections import OrderedDict

import torch
from safetensors.torch import save_file, load_file

f32 = torch.float32
sd = OrderedDict()
sd["features.0.weight"] = (torch.arange(12, dtype=f32) * 0.25 - 1).reshape(3, 4)
sd["features.0.bias"] = torch.tensor([0.5, -0.5, 1.5], dtype=f32)
sd["features.1.weight"] = torch.ones(3, dtype=f32)
sd["features.1.bias"] = torch.zeros(3, dtype=f32)
sd["features.1.running_mean"] = torch.arange(3, dtype=f32) * 0.125
sd["features.1.running_var"] = torch.arange(3, dtype=f32) + 1
sd["features.1.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
sd["classifier.weight"] = (torch.arange(6, dtype=f32) * 0.5 - 1.25).reshape(2, 3).to(torch.float16)
sd["classifier.bias"] = torch.tensor([0.5, -2.0], dtype=torch.bfloat16)
sd["extra.scale"] = (torch.arange(4, dtype=torch.float64) / 8 + 1e-3).reshape(2, 2)
sd["extra.mask"] = torch.tensor([0, 1, 255, 3, 4], dtype=torch.uint8)
sd["extra.index"] = torch.tensor([-3, 0, 2147483647], dtype=torch.int32)

# The layers the Rust test builds must agree with torch on these names.
model = torch.nn.Sequential(OrderedDict(features=torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)),
                                        classifier=torch.nn.Linear(3, 2)))
assert list(model.state_dict().keys()) == list(sd.keys())[:9], list(model.state_dict().keys())

meta = {"format": "pt", "source": "gen_state.py", "epoch": "12"}
save_file(sd, "torch_state.safetensors", metadata=meta)

back = load_file("torch_state.safetensors")
assert all(torch.equal(back[k], v) for k, v in sd.items())
print("wrote torch_state.safetensors:", len(sd), "tensors")
