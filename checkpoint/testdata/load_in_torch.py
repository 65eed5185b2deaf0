#!/usr/bin/python3
"""Load a supflow checkpoint into a PyTorch SupConResNet (strict=True).

Compatibility demo, not part of the CI contract. It needs only PyTorch
(Debian: apt-get install python3-torch, then run it with /usr/bin/python3);
the safetensors file is parsed with struct + json + torch.frombuffer because
Debian ships no safetensors package.

    /usr/bin/python3 checkpoint/testdata/load_in_torch.py CHECKPOINT.safetensors...

The network is SupContrast's networks/resnet_big.py SupConResNet (BasicBlock
or Bottleneck ResNet encoder without max-pool, 'mlp' or 'linear' head) with
the stage widths, block counts, block type, input channels and feature
dimension read off the checkpoint's tensor shapes, so tiny test widths work.
The script drops the "optimizer." tensors, calls
model.load_state_dict(state, strict=True), checks that every tensor kept its
dtype and values and that every momentum buffer matches a parameter, runs an
eval-mode forward pass, and prints one JSON object per file, one a line:

    {"ok": true, "path": ..., "arch": {...}, "tensors": N, "momentum": M,
     "sums": {name: float sum of the loaded tensor}, "output_shape": [...]}

An encoder-only export ("supflow.export": "encoder" in the metadata,
checkpoint.ExportEncoder) is loaded into model.encoder with strict=True
instead, and its forward pass gives the [N, d] features.

Exit status 0 on success; any failure raises (non-zero status).
"""
import json
import re
import struct
import sys

import os

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "torchref"))
from supcon_torch import BasicBlock, Bottleneck, SupConResNet  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        if hi > lo:
            t = torch.frombuffer(bytearray(data[lo:hi]), dtype=dt)
        else:
            t = torch.empty(0, dtype=dt)
        tensors[name] = t.reshape(e["shape"])
    return tensors, meta


# --- architecture from tensor shapes ------------------------------------


def infer_arch(sd):
    bottleneck = "encoder.layer1.0.conv3.weight" in sd
    widths, blocks = [], []
    for k in range(1, 5):
        idx = {int(m.group(1)) for n in sd for m in [re.match(rf"encoder\.layer{k}\.(\d+)\.", n)] if m}
        if not idx:
            raise ValueError(f"no blocks in encoder.layer{k}")
        blocks.append(max(idx) + 1)
        widths.append(sd[f"encoder.layer{k}.0.conv1.weight"].shape[0])
    if "head.0.weight" in sd:
        head, feat_dim = "mlp", sd["head.2.weight"].shape[0]
    elif "head.weight" in sd:
        head, feat_dim = "linear", sd["head.weight"].shape[0]
    else:  # an encoder-only export: any head will do, it is not loaded
        head, feat_dim = None, None
    return {
        "block": "bottleneck" if bottleneck else "basic",
        "num_blocks": blocks,
        "widths": widths,
        "in_channel": sd["encoder.conv1.weight"].shape[1],
        "head": head,
        "feat_dim": feat_dim,
    }


def main_encoder(path, tensors, meta):
    """An encoder-only export: its names load into SupConResNet.encoder."""
    arch = infer_arch({"encoder." + n: t for n, t in tensors.items()})
    block = Bottleneck if arch["block"] == "bottleneck" else BasicBlock
    model = SupConResNet(block, arch["num_blocks"], arch["widths"], arch["in_channel"], "linear", 1)
    dtype = {"float32": torch.float32, "float64": torch.float64}[meta["supflow.dtype"]]
    enc = model.encoder.to(dtype)
    enc.load_state_dict(tensors, strict=True)
    loaded = enc.state_dict()
    for name, t in tensors.items():
        if loaded[name].dtype != t.dtype or not torch.equal(loaded[name], t):
            raise ValueError(f"{name}: dtype or values changed on load")
    enc.eval()
    with torch.no_grad():
        out = enc(torch.randn(2, arch["in_channel"], 16, 16, dtype=dtype))
    if not torch.isfinite(out).all():
        raise ValueError("non-finite output")
    print(json.dumps({
        "ok": True,
        "path": path,
        "arch": arch,
        "tensors": len(tensors),
        "momentum": 0,
        "sums": {n: float(t.double().sum()) for n, t in loaded.items()},
        "output_shape": list(out.shape),
    }))


def main(path):
    tensors, meta = read_safetensors(path)
    if meta.get("supflow.export") == "encoder":
        return main_encoder(path, tensors, meta)
    momentum = {n[len("optimizer.momentum.") :]: t for n, t in tensors.items() if n.startswith("optimizer.momentum.")}
    sd = {n: t for n, t in tensors.items() if not n.startswith("optimizer.")}
    arch = infer_arch(sd)
    block = Bottleneck if arch["block"] == "bottleneck" else BasicBlock
    model = SupConResNet(block, arch["num_blocks"], arch["widths"], arch["in_channel"], arch["head"], arch["feat_dim"])
    dtype = {"float32": torch.float32, "float64": torch.float64}[meta["supflow.dtype"]]
    model = model.to(dtype)
    model.load_state_dict(sd, strict=True)

    loaded = model.state_dict()
    for name, t in sd.items():
        if loaded[name].dtype != t.dtype:
            raise TypeError(f"{name}: checkpoint {t.dtype}, model {loaded[name].dtype}")
        if not torch.equal(loaded[name], t):
            raise ValueError(f"{name}: values changed on load")
    params = dict(model.named_parameters())
    if set(momentum) - set(params):
        raise KeyError(f"momentum for non-parameters: {sorted(set(momentum) - set(params))}")
    for name, buf in momentum.items():
        if buf.shape != params[name].shape or buf.dtype != params[name].dtype:
            raise ValueError(f"momentum {name}: {buf.dtype} {tuple(buf.shape)} vs {params[name].dtype} {tuple(params[name].shape)}")
    # Rebuild an SGD state the way torch.optim.SGD keeps it, as a resume would.
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for name, buf in momentum.items():
        opt.state[params[name]]["momentum_buffer"] = buf.clone()

    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, arch["in_channel"], 16, 16, dtype=dtype))
    if not torch.isfinite(out).all():
        raise ValueError("non-finite output")
    print(json.dumps({
        "ok": True,
        "path": path,
        "arch": arch,
        "tensors": len(sd),
        "momentum": len(momentum),
        "sums": {n: float(t.double().sum()) for n, t in loaded.items()},
        "output_shape": list(out.shape),
    }))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: load_in_torch.py CHECKPOINT.safetensors...")
    for p in sys.argv[1:]:
        main(p)
