#!/usr/bin/python3
"""Feed the inputs of another fixture set (e.g. the shared reference set,
../shared/testdata) through this folder's generators and report how far
their outputs are from the values stored there.

    /usr/bin/python3 testdata/gen/compare_shared.py SHARED_TESTDATA_DIR

SHARED_TESTDATA_DIR holds supcon/, resnet/ and augment/ in the formats the
generators write. For each fixture kind the script prints the largest
absolute difference between the stored value and this generator's value for
the stored inputs (initial parameters, features, labels, images, op
parameters); it exits non-zero when a float64 difference exceeds 1e-9.
"""
import glob
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import augment  # noqa: E402
import resnet  # noqa: E402
import supcon  # noqa: E402
from common import max_abs, read_safetensors  # noqa: E402


def compare_supcon(d):
    worst = {"loss (abs)": 0.0, "loss (rel)": 0.0, "grad": 0.0, "anchor_losses": 0.0, "anchor_num_positives": 0.0, "loss_float32": 0.0}
    paths = sorted(glob.glob(os.path.join(d, "*.json")))
    for p in paths:
        c = json.load(open(p))
        r = supcon.compute(torch.tensor(c["features"], dtype=torch.float64), c["labels"], c["mask"],
                           c["temperature"], c["base_temperature"], c["contrast_mode"])
        worst["loss (abs)"] = max(worst["loss (abs)"], abs(r["loss"] - c["loss"]))
        worst["loss (rel)"] = max(worst["loss (rel)"], abs(r["loss"] - c["loss"]) / abs(c["loss"]))
        worst["grad"] = max(worst["grad"], max_abs(r["grad"], c["grad"]))
        worst["anchor_losses"] = max(worst["anchor_losses"], max_abs(r["anchor_losses"], c["anchor_losses"]))
        worst["anchor_num_positives"] = max(worst["anchor_num_positives"], max_abs(r["anchor_num_positives"], c["anchor_num_positives"]))
        worst["loss_float32"] = max(worst["loss_float32"], abs(r["loss_float32"] - c["loss_float32"]))
    return len(paths), worst


def compare_resnet(d):
    worst, n = {}, 0
    for jp in sorted(glob.glob(os.path.join(d, "*.json"))):
        meta = json.load(open(jp))
        t = read_safetensors(os.path.join(d, meta["tensors_file"]))
        arch = meta["architecture"]
        state = {k[len("init/"):]: v for k, v in t.items() if k.startswith("init/")}
        for c in meta["cases"]:
            n += 1
            p = c["name"] + "/"
            r = resnet.run(arch["block"], arch["stage_widths"], state, t[p + "input"], c["labels"])
            for key in ("loss_step1", "loss_step2"):
                worst[key] = max(worst.get(key, 0.0), abs(r[key] - c[key]))
            for name, want in t.items():
                if not name.startswith(p) or name == p + "input":
                    continue
                rest = name[len(p):]
                group, _, leaf = rest.partition("/")
                if group in ("grad", "after_forward1", "after_forward2", "step1", "step2"):
                    got, kind = r[group][leaf], group
                else:
                    got, kind = r[rest], rest
                worst[kind] = max(worst.get(kind, 0.0), max_abs(got, want))
    return n, worst


def compare_augment(d):
    meta = json.load(open(os.path.join(d, "augment.json")))
    t = read_safetensors(os.path.join(d, meta["tensors_file"]))
    images = {i["name"]: t[i["tensor"]] for i in meta["inputs"]}
    worst = {}
    for c in meta["cases"]:
        got = augment.run_case(images[c["input"]], c["op"], c["params"])
        worst[c["op"]] = max(worst.get(c["op"], 0.0), max_abs(got, t[c["output"]]))
    for c in meta.get("pil_reference_cases", []):
        got = augment.pil_resized_crop(images[c["input"]], c["params"])
        worst["pil_resized_crop (uint8 units)"] = max(worst.get("pil_resized_crop (uint8 units)", 0.0), max_abs(got, t[c["output"]]))
    return len(meta["cases"]) + len(meta.get("pil_reference_cases", [])), worst


def main(root):
    bad = False
    for kind, fn in (("supcon", compare_supcon), ("resnet", compare_resnet), ("augment", compare_augment)):
        n, worst = fn(os.path.join(root, kind))
        print(f"{kind}: {n} cases")
        for k, v in worst.items():
            print(f"  {k:36s} max abs diff {v:.3g}")
            if "float32" not in k and "(rel)" not in k and v > 1e-9:
                bad = True
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
