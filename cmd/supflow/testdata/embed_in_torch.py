#!/usr/bin/python3
"""Recompute `supflow embed`'s features in PyTorch from `supflow export`.

    /usr/bin/python3 embed_in_torch.py SPEC.json

SPEC: {"encoder": export.safetensors, "features": features.npy,
       "pixels": [N, H, W, 3] .npy of the decoded RGB values (0..255), in
                 the embedding's row order,
       "mean": [...], "std": [...]}   (info.json's per-channel statistics)

It loads the export into SupContrast's SupConResNet.encoder with
load_state_dict(strict=True) and preprocesses each image as
docs/operations.md ("How the evaluation sees an image") states for images
already at the view size: (p / 255 - mean) / std, NCHW; then
runs the encoder in eval mode and prints
{"rows": N, "dim": d, "max_abs_diff": max |torch - supflow|}.
Needs Debian's python3-torch (and python3-numpy, which it depends on).
"""
import json
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "internal", "torchref"))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "checkpoint", "testdata"))
from supcon_torch import BasicBlock, Bottleneck, SupConResNet  # noqa: E402
from load_in_torch import infer_arch, read_safetensors  # noqa: E402


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    tensors, meta = read_safetensors(spec["encoder"])
    if meta.get("supflow.export") != "encoder":
        raise ValueError("not an encoder export")
    arch = infer_arch({"encoder." + n: t for n, t in tensors.items()})
    block = Bottleneck if arch["block"] == "bottleneck" else BasicBlock
    enc = SupConResNet(block, arch["num_blocks"], arch["widths"], arch["in_channel"], "linear", 1).encoder
    enc.load_state_dict(tensors, strict=True)
    enc.eval()
    mean = torch.tensor(spec["mean"], dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float64).view(1, -1, 1, 1)
    px = np.load(spec["pixels"])
    x = torch.from_numpy(px).permute(0, 3, 1, 2).to(torch.float64)
    x = ((x / 255 - mean) / std).to(torch.float32)
    with torch.no_grad():
        feats = enc(x).numpy()
    want = np.load(spec["features"])
    if want.shape != feats.shape:
        raise ValueError(f"supflow {want.shape}, torch {feats.shape}")
    print(json.dumps({"rows": int(feats.shape[0]), "dim": int(feats.shape[1]),
                      "max_abs_diff": float(np.abs(feats - want).max()),
                      "max_abs": float(np.abs(want).max())}))


if __name__ == "__main__":
    main(sys.argv[1])
