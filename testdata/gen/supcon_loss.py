"""Supervised Contrastive loss (Khosla et al., 2020) with the semantics of
SupConLoss in HobbitLong/SupContrast losses.py (current HEAD, i.e. with the
fix that gives anchors without positives a loss of 0 instead of NaN).
Written for these fixtures from the paper and the official behaviour; it is
not a copy of the official file.

Semantics, for features [bsz, n_views, dim]:
  * contrast set: the bsz*n_views vectors in view-major order
    (row v*bsz + i = view v of sample i);
  * anchors: every row ("all") or the view-0 rows only ("one");
  * positive mask between samples: labels equal (labels given), the explicit
    [bsz, bsz] mask (mask given), or the identity (neither: SimCLR);
  * s[a, c] = <anchor_a, contrast_c> / temperature, the row max (self
    included) subtracted for stability;
  * self-contrast is dropped from the denominator and from the positives;
  * anchor loss = -(T / base_T) * mean over positives p of
    (s[a, p] - log sum_{c != a} exp s[a, c]); 0 when there is no positive
    (the divisor is clamped to 1 below 1e-6);
  * loss = plain mean over all anchors.
"""
import torch


def positive_mask(bsz, labels=None, mask=None, dtype=torch.float64):
    """The [bsz, bsz] sample-level positive mask."""
    if labels is not None and mask is not None:
        raise ValueError("pass labels or mask, not both")
    if mask is not None:
        m = torch.as_tensor(mask).to(dtype)
        if m.shape != (bsz, bsz):
            raise ValueError(f"mask shape {tuple(m.shape)}, want ({bsz}, {bsz})")
        return m
    if labels is None:
        return torch.eye(bsz, dtype=dtype)
    lab = torch.as_tensor(labels).reshape(-1)
    if lab.numel() != bsz:
        raise ValueError(f"{lab.numel()} labels for {bsz} samples")
    return (lab.unsqueeze(0) == lab.unsqueeze(1)).to(dtype)


def supcon(features, labels=None, mask=None, temperature=0.07, base_temperature=0.07, contrast_mode="all"):
    """Return (loss, anchor_losses [anchor_count, bsz], num_positives
    [anchor_count, bsz]); loss is differentiable with respect to features."""
    if features.dim() < 3:
        raise ValueError("features must be [bsz, n_views, ...]")
    bsz, n_views = features.shape[0], features.shape[1]
    feats = features.reshape(bsz, n_views, -1)
    dtype = feats.dtype
    pos = positive_mask(bsz, labels, mask, dtype)

    # View-major contrast rows: all of view 0, then all of view 1, ...
    contrast = feats.transpose(0, 1).reshape(n_views * bsz, -1)
    if contrast_mode == "all":
        anchors, anchor_count = contrast, n_views
    elif contrast_mode == "one":
        anchors, anchor_count = feats[:, 0], 1
    else:
        raise ValueError(f"unknown contrast_mode {contrast_mode!r}")
    n_anchor, n_contrast = anchor_count * bsz, n_views * bsz

    sim = anchors @ contrast.t() / temperature
    sim = sim - sim.max(dim=1, keepdim=True).values.detach()

    # Anchor a (row a of the anchor block) is contrast row a: drop it.
    others = torch.ones(n_anchor, n_contrast, dtype=dtype)
    idx = torch.arange(n_anchor)
    others[idx, idx] = 0
    pos = pos.repeat(anchor_count, n_views) * others

    log_denominator = torch.log((torch.exp(sim) * others).sum(dim=1))
    log_prob = sim - log_denominator.unsqueeze(1)
    num_pos = pos.sum(dim=1)
    divisor = torch.where(num_pos < 1e-6, torch.ones_like(num_pos), num_pos)
    mean_log_prob_pos = (pos * log_prob).sum(dim=1) / divisor

    anchor_losses = (-(temperature / base_temperature) * mean_log_prob_pos).reshape(anchor_count, bsz)
    return anchor_losses.mean(), anchor_losses, num_pos.reshape(anchor_count, bsz)
