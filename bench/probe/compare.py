"""Linear probes on `supflow embed` features: supflow's recipe against a
converged logistic regression (make bench-probe; docs/benchmarks.md).

usage: compare.py TRAIN_DIR TEST_DIR   (each with features.npy, labels.npy)

Cases, each printed as a `PROBE case=... top1=...` line:
  supflow     probe.Train as the frozen protocol runs it: standardised
              features, zero init, SGD lr 0.1 momentum 0.9 no weight decay,
              batch 256, 10 epochs, cosine to 0 updated every step
  epochcos    the same with SupContrast's per-epoch cosine
              (main_linear.py: eta_min = lr * 0.2**3, set once per epoch)
  lbfgs       multinomial logistic regression by full-batch L-BFGS to
              convergence, L2 chosen on a held-out fifth of train
The SGD cases' seed shuffles; lbfgs's seed draws the held-out fifth.
"""
import math
import sys

import numpy as np
import torch

EPOCHS, BATCH, LR, MOMENTUM = 10, 256, 0.1, 0.9
L2_GRID = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]


def load(d):
    return (torch.from_numpy(np.load(d + "/features.npy")).float(),
            torch.from_numpy(np.load(d + "/labels.npy")).long())


def standardise(x, ref):
    # Population std; constant features drop out, as probe.moments does.
    mean, sd = ref.mean(0), ref.std(0, unbiased=False)
    inv = torch.where(sd > 1e-12, 1 / sd, torch.zeros_like(sd))
    return (x - mean) * inv


def top1(w, b, x, y):
    return ((x @ w.T + b).argmax(1) == y).double().mean().item()


def loss(w, b, x, y):
    """Mean training cross-entropy, without the L2 term: how far each case
    got on the same objective."""
    return torch.nn.functional.cross_entropy(x.double() @ w.T.double() + b.double(), y).item()


def sgd(x, y, k, seed, per_step):
    n, d = x.shape
    w = torch.zeros(k, d, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=LR, momentum=MOMENTUM)
    g = torch.Generator().manual_seed(seed)
    steps = math.ceil(n / BATCH)
    eta_min = LR * 0.2 ** 3
    for e in range(EPOCHS):
        perm = torch.randperm(n, generator=g)
        for s in range(steps):
            if per_step:
                lr = LR * (1 + math.cos(math.pi * (e + s / steps) / EPOCHS)) / 2
            else:
                lr = eta_min + (LR - eta_min) * (1 + math.cos(math.pi * (e + 1) / EPOCHS)) / 2
            for group in opt.param_groups:
                group["lr"] = lr
            rows = perm[s * BATCH:(s + 1) * BATCH]
            loss = torch.nn.functional.cross_entropy(x[rows] @ w.T + b, y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return w.detach(), b.detach()


def lbfgs(x, y, k, l2):
    # float64 and tight tolerances: this is the reference optimum.
    x = x.double()
    w = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=2000, history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + l2 / 2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().float(), b.detach().float()


def main():
    (xtr, ytr), (xte, yte) = load(sys.argv[1]), load(sys.argv[2])
    k = int(ytr.max()) + 1
    torch.set_num_threads(1)
    str_, ste = standardise(xtr, xtr), standardise(xte, xtr)
    print(f"PROBE data train={len(ytr)} test={len(yte)} dim={xtr.shape[1]} classes={k}")
    for seed in (1, 2):
        for case, per_step in (("supflow", True), ("epochcos", False)):
            w, b = sgd(str_, ytr, k, seed, per_step)
            print(f"PROBE case={case} seed={seed} top1={top1(w, b, ste, yte):.4f} "
                  f"train_top1={top1(w, b, str_, ytr):.4f} train_loss={loss(w, b, str_, ytr):.4f}")
    for seed in (1, 2):
        perm = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(seed))
        hold, fit = perm[:len(ytr) // 5], perm[len(ytr) // 5:]
        # Held-out part standardised by the fitting part's statistics alone.
        xf, xh = standardise(xtr[fit], xtr[fit]), standardise(xtr[hold], xtr[fit])
        scores = {l2: top1(*lbfgs(xf, ytr[fit], k, l2), xh, ytr[hold]) for l2 in L2_GRID}
        best = max(L2_GRID, key=lambda l2: (scores[l2], l2))
        w, b = lbfgs(str_, ytr, k, best)
        held = " ".join(f"{l2:g}:{a:.4f}" for l2, a in scores.items())
        print(f"PROBE case=lbfgs seed={seed} l2={best:g} top1={top1(w, b, ste, yte):.4f} "
              f"train_top1={top1(w, b, str_, ytr):.4f} train_loss={loss(w, b, str_, ytr):.4f} heldout={held}")


if __name__ == "__main__":
    main()
