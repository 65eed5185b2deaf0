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
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != 4 * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, stride, bias=False), nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class Encoder(nn.Module):
    def __init__(self, block, widths, blocks, stem, cin):
        super().__init__()
        w0 = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(cin, w0, 7, 2, 3, bias=False)
            self.pool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(cin, w0, 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(w0)
        layers, c = [], w0
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stage = []
            for j in range(n):
                stage.append(block(c, w, (1 if i == 0 else 2) if j == 0 else 1))
                c = w * block.expansion
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dim = c

    def forward(self, x):
        out = self.pool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


class SupConResNet(nn.Module):
    def __init__(self, block, widths, blocks, stem, cin, feat_dim):
        super().__init__()
        self.encoder = Encoder(block, widths, blocks, stem, cin)
        d = self.encoder.dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, feat_dim))

    def forward(self, x):
        return F.normalize(self.head(self.encoder(x)), dim=1)


def supcon(features, labels, temperature=0.1, base_temperature=0.07):
    """SupContrast's SupConLoss, contrast_mode='all'."""
    bsz, n_views = features.shape[0], features.shape[1]
    labels = labels.view(-1, 1)
    mask = torch.eq(labels, labels.T).float()
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = torch.matmul(contrast, contrast.T) / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = mask.repeat(n_views, n_views)
    n = bsz * n_views
    logits_mask = torch.ones_like(mask) - torch.eye(n)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    pos = mask.sum(1)
    pos = torch.where(pos < 1e-6, torch.ones_like(pos), pos)
    mean_log_prob_pos = (mask * log_prob).sum(1) / pos
    return (-(temperature / base_temperature) * mean_log_prob_pos).mean()


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
    block = Basic if a.block == "basic" else Bottleneck
    model = SupConResNet(block, [int(v) for v in a.widths.split(",")], [int(v) for v in a.blocks.split(",")],
                         a.stem, a.channels, 128)
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
            loss = supcon(f, labels)
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
