#!/usr/bin/python3
"""Generate testdata/augment: torchvision 0.14 functional augmentation ops
with explicit parameters, on the tensor path in float64, plus a few Pillow
resized crops for reference.

    /usr/bin/python3 testdata/gen/augment.py [OUT_DIR]   # default testdata/augment

Deterministic: the four input images come from torch.Generators with fixed
seeds, the RandomResizedCrop boxes from RandomResizedCrop.get_params (and
the ColorJitter settings from ColorJitter.get_params) under
torch.manual_seed with fixed seeds. Every output is what torchvision itself
returns for the recorded parameters.
"""
import math
import os
import sys

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import max_abs, write_json, write_safetensors  # noqa: E402

CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]
GRAY_MEAN, GRAY_STD = [0.1307], [0.3081]
SUPCON_SCALE, SUPCON_RATIO = (0.2, 1.0), (3 / 4, 4 / 3)

# name, channels, height, width, image seed, RandomResizedCrop seed, mixed
# box [top, left, height, width] (one axis shrinks and one grows at S=16).
INPUTS = [
    ("img_a", 3, 20, 17, 5101, 5201, [1, 2, 18, 7]),
    ("img_b", 3, 32, 32, 5102, 5202, [3, 5, 27, 10]),
    ("img_c", 3, 24, 40, 5103, 5203, [2, 4, 10, 33]),
    ("gray_d", 1, 28, 28, 5104, 5204, [5, 1, 8, 25]),
]
# Colours that exercise the HSV branches and clamping: white, black, exact
# greys, ties at the maximum, pure red, a green-dominant colour.
SPECIAL = [(255, 255, 255), (0, 0, 0), (77, 77, 77), (10, 10, 10), (200, 200, 50),
           (30, 180, 180), (120, 40, 120), (255, 0, 0), (0, 255, 128)]
BRIGHTNESS, CONTRAST = [0.6, 1.4, 1.1734], [0.6, 1.4, 0.8291]
SATURATION, HUE = [0.6, 1.4, 0.0], [-0.1, 0.1, 0.0375, 0.5]
GRAY_SATURATION, GRAY_HUE = [0.6], [0.1]
JITTER_SEEDS = {"j0": 5301, "j1": 5302}
OP_NAMES = ["brightness", "contrast", "saturation", "hue"]


def make_image(c, h, w, seed):
    """uint8 [c,h,w]: per channel a sinusoid plus a ramp (random frequency,
    phase and slope), Gaussian noise; RGB images also get the SPECIAL
    colours at distinct random pixels."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.arange(h, dtype=torch.float64).unsqueeze(1).expand(h, w)
    xx = torch.arange(w, dtype=torch.float64).unsqueeze(0).expand(h, w)
    planes = []
    for _ in range(c):
        fx, fy, phase, sx, sy = (torch.rand(5, generator=g, dtype=torch.float64) * torch.tensor([2.5, 2.5, 2 * math.pi, 0.6, 0.6], dtype=torch.float64) - torch.tensor([0, 0, 0, 0.3, 0.3], dtype=torch.float64)).tolist()
        base = 0.5 + 0.3 * torch.sin(2 * math.pi * (fx * xx / w + fy * yy / h) + phase) + sx * (xx / w - 0.5) + sy * (yy / h - 0.5)
        base = base + 0.06 * torch.randn(h, w, generator=g, dtype=torch.float64)
        planes.append(base)
    img = (torch.stack(planes) * 255).round().clamp(0, 255).to(torch.uint8)
    if c == 3:
        where = torch.randperm(h * w, generator=g)[: len(SPECIAL)].tolist()
        for k, rgb in zip(where, SPECIAL):
            img[:, k // w, k % w] = torch.tensor(rgb, dtype=torch.uint8)
    return img


def rrc_box(img, seed):
    torch.manual_seed(seed)
    return list(T.RandomResizedCrop.get_params(img, SUPCON_SCALE, SUPCON_RATIO))


def fallback_box(img):
    """The box get_params falls back to: ask for an area no attempt can fit."""
    return list(T.RandomResizedCrop.get_params(img, (4.0, 4.0), SUPCON_RATIO))


def jitter_params(seed):
    """ColorJitter(0.4, 0.4, 0.4, 0.1).get_params under manual_seed(seed),
    factors rounded to 4 decimals."""
    torch.manual_seed(seed)
    fn_idx, b, c, s, h = T.ColorJitter.get_params((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    fn_idx = fn_idx.tolist()
    return {
        "fn_idx": fn_idx,
        "brightness_factor": round(float(b), 4),
        "contrast_factor": round(float(c), 4),
        "saturation_factor": round(float(s), 4),
        "hue_factor": round(float(h), 4),
        "order_names": [OP_NAMES[k] for k in fn_idx],
    }


def to_float(img_u8, dtype=torch.float64):
    return img_u8.to(dtype) / 255.0


def apply(x, op, p):
    """Apply one op with explicit parameters p to the float [C,H,W] tensor x
    through torchvision.transforms.functional."""
    if op == "resized_crop":
        return TF.resized_crop(x, p["top"], p["left"], p["height"], p["width"], list(p["size"]),
                               TF.InterpolationMode.BILINEAR, antialias=p["antialias"])
    if op == "hflip":
        return TF.hflip(x)
    if op == "adjust_brightness":
        return TF.adjust_brightness(x, p["factor"])
    if op == "adjust_contrast":
        return TF.adjust_contrast(x, p["factor"])
    if op == "adjust_saturation":
        return TF.adjust_saturation(x, p["factor"])
    if op == "adjust_hue":
        return TF.adjust_hue(x, p["factor"])
    if op == "rgb_to_grayscale":
        return TF.rgb_to_grayscale(x, p["num_output_channels"])
    if op == "color_jitter":
        fns = [lambda y: TF.adjust_brightness(y, p["brightness_factor"]),
               lambda y: TF.adjust_contrast(y, p["contrast_factor"]),
               lambda y: TF.adjust_saturation(y, p["saturation_factor"]),
               lambda y: TF.adjust_hue(y, p["hue_factor"])]
        for k in p["fn_idx"]:
            x = fns[k](x)
        return x
    if op == "normalize":
        return TF.normalize(x, p["mean"], p["std"])
    if op == "pipeline":
        for st in p["steps"]:
            x = apply(x, st["op"], st)
        return x
    raise ValueError(f"unknown op {op}")


def run_case(img_u8, op, params, dtype=torch.float64):
    return apply(to_float(img_u8, dtype), op, params)


def pil_resized_crop(img_u8, p):
    """F.resized_crop on a PIL image (always antialiased), back to uint8 CHW."""
    pil = Image.fromarray(img_u8.permute(1, 2, 0).contiguous().numpy(), "RGB")
    out = TF.resized_crop(pil, p["top"], p["left"], p["height"], p["width"], list(p["size"]), TF.InterpolationMode.BILINEAR)
    return torch.from_numpy(np.array(out, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def fmt(f):
    return repr(float(f))


def build_cases(inputs, jitters):
    cases, pil_cases = [], []
    for spec in inputs:
        name, c = spec["name"], spec["channels"]
        add = lambda op, cid, params: cases.append({"id": f"{name}/{op}/{cid}", "input": name, "op": op, "params": params})
        for box, (top, left, h, w) in spec["boxes"].items():
            for s in (16, 32):
                for aa in (False, True):
                    add("resized_crop", f"{box}_s{s}_aa{int(aa)}", {"top": top, "left": left, "height": h, "width": w,
                                                                    "size": [s, s], "interpolation": "bilinear", "antialias": aa})
                if c == 3:
                    pil_cases.append({"id": f"{name}/pil_resized_crop/{box}_s{s}", "input": name, "op": "pil_resized_crop",
                                      "params": {"top": top, "left": left, "height": h, "width": w, "size": [s, s], "interpolation": "bilinear"}})
        add("hflip", "x", {})
        for f in BRIGHTNESS:
            add("adjust_brightness", fmt(f), {"factor": f})
        for f in CONTRAST:
            add("adjust_contrast", fmt(f), {"factor": f})
        for f in (SATURATION if c == 3 else GRAY_SATURATION):
            add("adjust_saturation", fmt(f), {"factor": f})
        for f in (HUE if c == 3 else GRAY_HUE):
            add("adjust_hue", fmt(f), {"factor": f})
        add("rgb_to_grayscale", "n3", {"num_output_channels": 3})
        for j, params in jitters.items():
            add("color_jitter", j, params)
        norm = {"mean": CIFAR_MEAN, "std": CIFAR_STD} if c == 3 else {"mean": GRAY_MEAN, "std": GRAY_STD}
        add("normalize", "x", norm)
        top, left, h, w = spec["boxes"]["rrc"]
        gray = name in ("img_a", "gray_d")
        steps = [{"op": "resized_crop", "top": top, "left": left, "height": h, "width": w, "size": [32, 32],
                  "interpolation": "bilinear", "antialias": False},
                 {"op": "hflip"},
                 {"op": "color_jitter", **jitters["j0"]}]
        if gray:
            steps.append({"op": "rgb_to_grayscale", "num_output_channels": 3})
        steps.append({"op": "normalize", **norm})
        add("pipeline", "supcon_like_gray" if gray else "supcon_like", {"steps": steps})
    return cases, pil_cases


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    images, inputs = {}, []
    for name, c, h, w, seed, rrc_seed, mixed in INPUTS:
        img = make_image(c, h, w, seed)
        images[name] = img
        boxes = {"full": [0, 0, h, w], "rrc": rrc_box(img, rrc_seed), "mixed": mixed}
        fb = fallback_box(img)
        if fb != [0, 0, h, w]:
            boxes["fallback"] = fb
        inputs.append({"name": name, "tensor": f"input/{name}", "dtype": "uint8", "shape": [c, h, w], "channels": c,
                       "height": h, "width": w, "image_seed": seed, "rrc_seed": rrc_seed, "rrc_fallback_box": fb, "boxes": boxes})
    jitters = {j: jitter_params(s) for j, s in JITTER_SEEDS.items()}
    cases, pil_cases = build_cases(inputs, jitters)

    tensors, by_op = [], {}
    outputs = {}
    for case in cases:
        img = images[case["input"]]
        out = run_case(img, case["op"], case["params"])
        out32 = run_case(img, case["op"], case["params"], torch.float32)
        if out.dtype != torch.float64:
            raise TypeError(f"{case['id']}: output {out.dtype}")
        if case["op"] not in ("normalize", "pipeline") and (out.min() < 0 or out.max() > 1):
            raise ValueError(f"{case['id']}: output outside [0,1]")
        d32 = max_abs(out32.double(), out)
        by_op[case["op"]] = max(by_op.get(case["op"], 0.0), d32)
        case["output"] = "out/" + case["id"]
        case["output_shape"] = list(out.shape)
        case["float32_max_abs_diff"] = d32
        outputs[case["id"]] = out
        tensors.append((case["output"], out))
    tensors += [(f"input/{n}", images[n]) for n in images]
    for case in pil_cases:
        out = pil_resized_crop(images[case["input"]], case["params"])
        case["output"] = "out/" + case["id"]
        case["output_shape"] = list(out.shape)
        box = case["id"].split("/")[-1]
        case["comparison"] = {
            f"max_abs_diff_vs_tensor_aa{a}_x255": max_abs(out.double() / 255, outputs[f"{case['input']}/resized_crop/{box}_aa{a}"]) * 255
            for a in (0, 1)
        }
        tensors.append((case["output"], out))

    write_safetensors(os.path.join(out_dir, "augment.safetensors"), tensors)
    write_json(os.path.join(out_dir, "augment.json"), {
        "description": "torchvision 0.14 functional augmentation parity cases (tensor path, float64)",
        "tensors_file": "augment.safetensors",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__},
        "tensor_layout": "CHW, row-major (C-order); height before width",
        "float_input": "x = uint8 / 255.0 as float64 (exactly what TF.to_tensor does, but in float64)",
        "inputs": inputs,
        "float32_max_abs_diff_by_op": by_op,
        "cases": cases,
        "pil_reference_cases": pil_cases,
    })
    counts = {}
    for c in cases:
        counts[c["op"]] = counts.get(c["op"], 0) + 1
    print(f"{len(cases)} cases {counts}, {len(pil_cases)} PIL cases")
    print("boxes:", {i["name"]: i["boxes"] for i in inputs})
    print("jitter:", jitters)
    print("float32 max abs diff by op:", {k: f"{v:.2g}" for k, v in by_op.items()})
    print("PIL vs tensor (x255): aa0 max", max(c["comparison"]["max_abs_diff_vs_tensor_aa0_x255"] for c in pil_cases),
          "aa1 max", max(c["comparison"]["max_abs_diff_vs_tensor_aa1_x255"] for c in pil_cases))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "augment"))
