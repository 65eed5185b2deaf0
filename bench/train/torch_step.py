#!/usr/bin/env python3
"""Reference for `make bench-train`: one SupCon training step in PyTorch.

Builds the same SupConResNet as supflow's model package (SupContrast's
networks/resnet_big.py, with configurable widths, blocks and stem), runs
SGD steps on random inputs and prints one JSON line:
{"ms_per_step": ..., "peak_rss_mb": ..., "threads": ..., "channels_last": ..., "torch": ...}
Uses only Debian's python3-torch.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "torchref"))
from supcon_torch import BasicBlock, Bottleneck, SupConResNet, supcon_loss  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--block", choices=["basic", "bottleneck"], default="basic")
    p.add_argument("--widths", default="64,128,256,512")
    p.add_argument("--blocks", default="2,2,2,2")
    p.add_argument("--stem", choices=["cifar", "imagenet"], default="cifar")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--bsz", type=int, default=128)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", type=int, default=1)
    p.add_argument("--no-grad", action="store_true", help="time an eval forward instead of a training step")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    block = BasicBlock if a.block == "basic" else Bottleneck
    model = SupConResNet(block, [int(v) for v in a.blocks.split(",")], [int(v) for v in a.widths.split(",")],
                         a.channels, "mlp", 128, a.stem)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.views * a.bsz, a.channels, a.size, a.size).to(memory_format=fmt)
    labels = torch.randint(0, 10, (a.bsz,))
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        if a.no_grad:
            model.eval()
            with torch.no_grad():
                model.encoder(x)
        else:
            z = model(x)
            f = torch.stack(torch.split(z, a.bsz, dim=0), dim=1)
            loss = supcon_loss(f, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"ms_per_step": 1000 * sum(times) / len(times), "peak_rss_mb": rss,
                      "threads": a.threads, "channels_last": bool(a.channels_last),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
