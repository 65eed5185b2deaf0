#!/usr/bin/env python3
"""Reference side of `make bench-data`: PIL and torchvision on one core.

Driven by bench/data/main.go over stdin/stdout, one JSON object per line, so
that each case runs right after its Go counterpart on the same files:
  in:  {"case": "decode_full", "list": "/tmp/x/photos.txt", "min_sec": 2}
  out: {"n": 22, "sec": 3.1}
after a first line {"ready": true} once the imports are done.
n counts images (decode cases) or pairs of views (augment cases). Inputs are
read into memory, and augment inputs decoded, before the clock starts.
Uses Debian's python3-pil, python3-torch and python3-torchvision.
"""
import io
import json
import random
import sys
import time

import torch
from PIL import Image
from torchvision import transforms as T

torch.set_num_threads(1)
torch.manual_seed(0)
random.seed(0)


def read_list(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def load_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def decode_full(data, mode):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im if im.mode == mode else im.convert(mode)


def decode_shorter(data, shorter, mode):
    """Draft mode + resize, what imgdecode's ResizeShorter does: DCT scaling
    to the largest 1/2, 1/4 or 1/8 keeping the shorter side >= 1.5x the
    target (PIL's draft picks the scale from the requested size), then
    antialiased bilinear to the target, as torchvision's Resize(shorter)."""
    im = Image.open(io.BytesIO(data))
    w, h = im.size
    need = shorter * 3 // 2
    im.draft(mode, (max(need, w * need // h), max(need, h * need // w)))
    im.load()
    return resize_shorter(im if im.mode == mode else im.convert(mode), shorter)


def resize_shorter(im, shorter):
    """torchvision's Resize(shorter) on a PIL image."""
    w, h = im.size
    size = (shorter, shorter * h // w) if w <= h else (shorter * w // h, shorter)
    return im.resize(size, Image.BILINEAR)


def supcon(size):
    """SupContrast's training transform up to the uint8 image (no ToTensor or
    Normalize: the Go side ships uint8 views too)."""
    return T.Compose([
        T.RandomResizedCrop(size=size, scale=(0.2, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ])


# case -> (prepare(list of bytes) -> items, op(item))
def cases():
    def aug(size, prep):
        t = supcon(size)

        def op(im):
            t(im)
            t(im)
        return prep, op

    return {
        "decode_full": (lambda bs: bs, lambda b: decode_full(b, "RGB")),
        "decode_256": (lambda bs: bs, lambda b: decode_shorter(b, 256, "RGB")),
        "decode_256_nodraft": (lambda bs: bs, lambda b: resize_shorter(decode_full(b, "RGB"), 256)),
        "decode_png32": (lambda bs: bs, lambda b: decode_full(b, "RGB")),
        "decode_png28_gray": (lambda bs: bs, lambda b: decode_full(b, "L")),
        "augment_photo_full": aug(224, lambda bs: [decode_full(b, "RGB") for b in bs]),
        "augment_photo_256": aug(224, lambda bs: [decode_shorter(b, 256, "RGB") for b in bs]),
        "augment_32": aug(32, lambda bs: [decode_full(b, "RGB") for b in bs]),
        "augment_28_gray": aug(28, lambda bs: [decode_full(b, "L") for b in bs]),
    }


def run(req, table):
    prep, op = table[req["case"]]
    items = prep([load_bytes(p) for p in read_list(req["list"])])
    n, start = 0, time.perf_counter()
    while True:
        op(items[n % len(items)])
        n += 1
        sec = time.perf_counter() - start
        if n >= len(items) and sec >= req["min_sec"]:
            return {"n": n, "sec": sec}


def main():
    table = cases()
    print(json.dumps({"ready": True}), flush=True)  # imports done: time nothing before
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line), table)), flush=True)


if __name__ == "__main__":
    main()
