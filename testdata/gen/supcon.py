#!/usr/bin/python3
"""Generate testdata/supcon: SupCon loss cases (features, labels or mask,
loss, gradient, per-anchor losses) computed in float64 with PyTorch.

    /usr/bin/python3 testdata/gen/supcon.py [OUT_DIR]   # default testdata/supcon

Deterministic: every case draws its features (and random labels) from a
torch.Generator seeded with the case's seed. The loss is supcon_loss.supcon
(SupContrast semantics); each value is re-derived with plain Python floats
and each gradient checked against central finite differences before
anything is written.
"""
import math
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import max_abs, write_json  # noqa: E402
from supcon_loss import supcon  # noqa: E402

T7 = 0.07

# name, description, bsz, n_views, dim, temperature, base_temperature,
# contrast_mode, labels ("random", k) / fixed list / None, mask, seed.
CASES = [
    ("classic_bsz4_v2_d8", "Classic example: labels [3,0,2,3], temperature/base_temperature 0.07, contrast_mode all.",
     4, 2, 8, T7, T7, "all", [3, 0, 2, 3], None, 7101),
    ("random_bsz8_v2_d16", "bsz 8, 2 views, dim 16, random labels in 0..2, temperature 0.07.",
     8, 2, 16, T7, T7, "all", ("random", 3), None, 7102),
    ("bsz6_v3_d8", "Three views per sample, random labels in 0..2, temperature 0.07.",
     6, 3, 8, T7, T7, "all", ("random", 3), None, 7103),
    ("simclr_bsz4_v2_d8", "labels and mask both null: SimCLR/unsupervised mode (only other views of the same sample are positives), temperature 0.07.",
     4, 2, 8, T7, T7, "all", None, None, 7104),
    ("mode_one_bsz5_v2_d8", "contrast_mode 'one': only view 0 of each sample is an anchor; all views are contrasts. Random labels in 0..2.",
     5, 2, 8, T7, T7, "one", ("random", 3), None, 7105),
    ("mode_one_bsz5_v3_d8", "contrast_mode 'one' with 3 views, random labels in 0..2.",
     5, 3, 8, T7, T7, "one", ("random", 3), None, 7106),
    ("temp05_base007_bsz6_v2_d8", "temperature 0.5 with base_temperature 0.07: loss scaled by 0.5/0.07. Random labels in 0..2.",
     6, 2, 8, 0.5, T7, "all", ("random", 3), None, 7107),
    ("unique_label_bsz5_v2_d8", "Label 2 (sample index 3) is unique in the batch; its only positive is its own other view.",
     5, 2, 8, T7, T7, "all", [0, 1, 0, 2, 1], None, 7108),
    ("large_bsz32_v2_d128_t01", "bsz 32, 2 views, dim 128, temperature 0.1 (base 0.07), random labels in 0..9.",
     32, 2, 128, 0.1, T7, "all", ("random", 10), None, 7109),
    ("no_positive_bsz4_v1_d8", "n_views 1 with labels [0,1,1,2]: anchors 0 and 3 have no positive at all. Current official code (after the NaN fix) gives such anchors loss 0 but still counts them in the mean; the original code produced NaN.",
     4, 1, 8, T7, T7, "all", [0, 1, 1, 2], None, 7110),
    ("explicit_mask_bsz4_v2_d8", "Explicit asymmetric [bsz,bsz] mask instead of labels (mask[i][j]=1 if sample j is a positive for anchor sample i); labels null.",
     4, 2, 8, T7, T7, "all", None, [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 0, 1]], 7111),
    ("all_same_label_bsz4_v2_d8", "All samples share one label: every non-self entry is a positive.",
     4, 2, 8, T7, T7, "all", [5, 5, 5, 5], None, 7112),
]


def draw_inputs(bsz, n_views, dim, labels, seed):
    """Standard-normal features, L2-normalised over dim; random labels after
    the features, from the same generator."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(bsz, n_views, dim, generator=g, dtype=torch.float64)
    f = f / f.norm(dim=2, keepdim=True)
    if isinstance(labels, tuple):
        labels = torch.randint(0, labels[1], (bsz,), generator=g).tolist()
    return f, labels


def compute(features, labels, mask, temperature, base_temperature, mode):
    """Everything a case records about the loss at these features."""
    x = features.clone().requires_grad_(True)
    loss, anchor, npos = supcon(x, labels, mask, temperature, base_temperature, mode)
    loss.backward()
    x32 = features.to(torch.float32).requires_grad_(True)
    loss32, _, _ = supcon(x32, labels, mask, temperature, base_temperature, mode)
    loss32.backward()
    return {
        "loss": loss.item(),
        "grad": x.grad,
        "loss_float32": float(loss32.item()),
        "grad_float32_max_abs_diff": max_abs(x32.grad.double(), x.grad),
        "anchor_losses": anchor.detach(),
        "anchor_num_positives": npos,
    }


def python_loss(features, labels, mask, temperature, base_temperature, mode):
    """The loss from the formula with Python floats (no torch, no max
    shift): an independent re-derivation."""
    f = features.tolist()
    bsz, n_views = len(f), len(f[0])
    rows = [(v, i) for v in range(n_views) for i in range(bsz)]

    def positive(i, j):
        if mask is not None:
            return mask[i][j] == 1
        if labels is None:
            return i == j
        return labels[i] == labels[j]

    anchors = rows if mode == "all" else rows[:bsz]
    total = 0.0
    for a, (va, ia) in enumerate(anchors):
        s = [math.fsum(p * q for p, q in zip(f[ia][va], f[ic][vc])) / temperature for (vc, ic) in rows]
        log_den = math.log(math.fsum(math.exp(s[c]) for c in range(len(rows)) if c != a))
        terms = [s[c] - log_den for c, (vc, ic) in enumerate(rows) if c != a and positive(ia, ic)]
        if terms:
            total += -(temperature / base_temperature) * math.fsum(terms) / len(terms)
    return total / len(anchors)


def finite_difference_error(features, labels, mask, temperature, base_temperature, mode, grad, max_coords, seed):
    """Max |central difference - grad| over (up to max_coords) coordinates."""
    flat = features.reshape(-1)
    coords = list(range(flat.numel()))
    if len(coords) > max_coords:
        coords = random.Random(seed).sample(coords, max_coords)
    eps, worst = 1e-6, 0.0
    g = grad.reshape(-1)
    for k in coords:
        vals = []
        for sgn in (1, -1):
            x = flat.clone()
            x[k] += sgn * eps
            vals.append(supcon(x.reshape(features.shape), labels, mask, temperature, base_temperature, mode)[0].item())
        worst = max(worst, abs((vals[0] - vals[1]) / (2 * eps) - g[k].item()))
    return worst


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, desc, bsz, views, dim, temp, base, mode, labels, mask, seed in CASES:
        features, labels = draw_inputs(bsz, views, dim, labels, seed)
        r = compute(features, labels, mask, temp, base, mode)
        ref = python_loss(features, labels, mask, temp, base, mode)
        rel = abs(ref - r["loss"]) / abs(r["loss"])
        fd = finite_difference_error(features, labels, mask, temp, base, mode, r["grad"], 200, seed)
        mean_anchor = abs(r["anchor_losses"].mean().item() - r["loss"])
        if rel > 1e-12 or fd > 1e-7 or mean_anchor > 1e-12 or not math.isfinite(r["loss"]):
            raise SystemExit(f"{name}: check failed (python rel {rel:g}, finite differences {fd:g}, anchor mean {mean_anchor:g})")
        print(f"{name}: loss {r['loss']:.17g}; python re-derivation rel {rel:.1e}, finite differences {fd:.1e}")
        write_json(os.path.join(out_dir, name + ".json"), {
            "name": name,
            "description": desc,
            "seed": seed,
            "dtype": "float64",
            "bsz": bsz,
            "n_views": views,
            "dim": dim,
            "temperature": temp,
            "base_temperature": base,
            "contrast_mode": mode,
            "labels": labels,
            "mask": mask,
            "features": features.tolist(),
            "loss": r["loss"],
            "grad": r["grad"].tolist(),
            "loss_float32": r["loss_float32"],
            "grad_float32_max_abs_diff": r["grad_float32_max_abs_diff"],
            "anchor_losses": r["anchor_losses"].tolist(),
            "anchor_num_positives": r["anchor_num_positives"].tolist(),
        })


if __name__ == "__main__":
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "supcon"))
