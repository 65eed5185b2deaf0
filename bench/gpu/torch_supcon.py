"""PyTorch side of bench/gpu/run.sh: the SupCon step supflow's XLA program
computes (SupContrast's resnet_big.py network, MLP head, SupConLoss, SGD
momentum 0.9 and weight decay 1e-4, two views of uint8 images normalised on
the GPU), timed in eager bf16 autocast with channels_last and, when it
compiles in time, with torch.compile. Prints GPU lines like the Go side.

usage: torch_supcon.py arch:stem:size:batch[,...] [steps] [compile_budget_s]
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "torchref"))
from supcon_torch import BasicBlock, Bottleneck, SupConResNet, supcon_loss  # noqa: E402

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


def network(arch, stem):
    """SupContrast's SupConResNet of arch on 3-channel images, MLP head to 128."""
    block, blocks = ARCHS[arch]
    return SupConResNet(block, blocks, [64, 128, 256, 512], 3, "mlp", 128, stem)


def bench(spec, steps, compile_budget):
    arch, stem, size, bsz = spec.split(":")
    size, bsz = int(size), int(bsz)
    dev = torch.device("cuda")
    model = network(arch, stem).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255
    gen = torch.Generator(device=dev).manual_seed(1)
    pixels = torch.randint(0, 256, (2 * bsz, size, size, 3), dtype=torch.uint8, device=dev, generator=gen)
    labels = torch.randint(0, 10, (bsz,), device=dev, generator=gen)

    def step():
        x = pixels.permute(0, 3, 1, 2).float().sub(mean).div(std).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            # The model's forward, its bf16 projection normalised in float32.
            z = F.normalize(model.head(model.encoder(x)).float(), dim=1)
        loss = supcon_loss(torch.stack(torch.split(z, bsz), dim=1), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def timed(fn, label, warm=3):
        torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        for _ in range(warm):
            fn()
        torch.cuda.synchronize()
        warm_s = time.time() - t0
        t0 = time.time()
        for _ in range(steps):
            loss = fn()
        torch.cuda.synchronize()
        el = time.time() - t0
        mem = torch.cuda.max_memory_allocated() / 2**30
        print(f"GPU torch {label} step {spec} bf16 batch 2x{bsz}: {steps * bsz / el:.0f} samples/s "
              f"({2 * steps * bsz / el:.0f} images/s), {el * 1000 / steps:.1f} ms/step, loss {loss.item():.4f}, "
              f"peak memory {mem:.1f} GiB, warm-up {warm_s:.1f} s", flush=True)

    timed(step, "eager")

    model.eval()
    x = pixels.permute(0, 3, 1, 2).float().sub(mean).div(std).contiguous(memory_format=torch.channels_last)

    def encode():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return model.encoder(x)

    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(steps):
        encode()
    torch.cuda.synchronize()
    el = time.time() - t0
    print(f"GPU torch eager encode {spec} bf16 batch {2 * bsz}: {2 * steps * bsz / el:.0f} images/s", flush=True)
    model.train()

    if compile_budget > 0:
        compiled = torch.compile(step)
        t0 = time.time()
        try:
            compiled()
            torch.cuda.synchronize()
        except Exception as e:  # report and go on: eager is the target
            print(f"GPU torch compile {spec}: failed: {type(e).__name__}: {e}", flush=True)
            return
        took = time.time() - t0
        if took > compile_budget:
            print(f"GPU torch compile {spec}: first step took {took:.0f} s, over the {compile_budget:.0f} s budget; not timed", flush=True)
            return
        timed(compiled, "compile", warm=2)


def main():
    specs = sys.argv[1].split(",")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 120
    torch.backends.cudnn.benchmark = True
    print(f"GPU torch {torch.__version__} cuda {torch.version.cuda} on {torch.cuda.get_device_name(0)}", flush=True)
    for spec in specs:
        bench(spec, steps, budget)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
