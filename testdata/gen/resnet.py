#!/usr/bin/python3
"""Generate testdata/resnet: two small SupContrast SupConResNets (BasicBlock
and Bottleneck) run through two SupCon + SGD training steps in float64 with
PyTorch, every intermediate tensor recorded.

    /usr/bin/python3 testdata/gen/resnet.py [OUT_DIR]   # default testdata/resnet

The network is internal/torchref/supcon_torch.py's SupConResNet (the
structure of SupContrast networks/resnet_big.py with widths as parameters),
one block per stage, 'mlp' head, feat_dim 16; the loss is
supcon_loss.supcon (temperature 0.1, base 0.07, contrast_mode 'all');
the optimizer torch.optim.SGD(lr 0.05, momentum 0.9, weight_decay 1e-4).
Deterministic: initial parameters come from torch.manual_seed(model seed),
inputs and labels from a torch.Generator seeded per case.
"""
import os
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "internal", "torchref"))
from common import max_abs, write_json, write_safetensors  # noqa: E402
from supcon_loss import supcon  # noqa: E402
from supcon_torch import BasicBlock, Bottleneck, SupConResNet  # noqa: E402

TEMPERATURE, BASE_TEMPERATURE = 0.1, 0.07
SGD = dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=False)
FEAT_DIM = 16

MODELS = [
    # name, block, stage widths, init seed, cases (name, bsz, image side, input seed, has_step_tensors)
    ("tiny_basic", "basic", [8, 16, 32, 64], 2718, [("b4_16px", 4, 16, 411, True), ("b2_32px", 2, 32, 412, False)]),
    ("tiny_bottleneck", "bottleneck", [4, 8, 16, 32], 3141, [("b4_16px", 4, 16, 421, True)]),
]


def new_model(block, widths):
    b = Bottleneck if block == "bottleneck" else BasicBlock
    return SupConResNet(b, [1, 1, 1, 1], widths, 3, "mlp", FEAT_DIM)


def init_state(block, widths, seed):
    """Initial state_dict (float64): built in float32 under manual_seed, conv
    weights kaiming_normal_(fan_out, relu), BN weight 1 / bias 0 as
    SupContrast's ResNet does, Linear layers PyTorch's default."""
    torch.manual_seed(seed)
    m = new_model(block, widths)
    for mod in m.encoder.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return {k: v.double() for k, v in m.state_dict().items()}


def forward(model, x):
    enc = model.encoder(x)
    head = model.head(enc)
    return enc, head, F.normalize(head, dim=1)


def loss_of(z, labels):
    bsz = len(labels)
    feats = torch.stack([z[:bsz], z[bsz:]], dim=1)
    return supcon(feats, torch.tensor(labels), None, TEMPERATURE, BASE_TEMPERATURE, "all")[0]


def buffers(model):
    return {n: b.detach().clone().to(torch.float64) for n, b in model.named_buffers()}


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def run(block, widths, state, x, labels, dtype=torch.float64):
    """The two-step procedure of the README from state (a state_dict) and
    input x; returns every recorded tensor and the two losses."""
    model = new_model(block, widths).to(dtype)
    model.load_state_dict({k: (v if k.endswith("num_batches_tracked") else v.to(dtype)) for k, v in state.items()}, strict=True)
    x = x.to(dtype).clone().requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    out = {}

    model.train()
    enc, head, z = forward(model, x)
    loss1 = loss_of(z, labels)
    out["train/encoder_features"], out["train/head_output"], out["train/features"] = enc.detach(), head.detach(), z.detach()
    out["after_forward1"] = buffers(model)
    opt.zero_grad()
    loss1.backward()
    out["grad"] = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    out["grad_input"] = x.grad.detach().clone()

    model.eval()
    with torch.no_grad():
        enc, _, z = forward(model, x.detach())
    out["eval_init/encoder_features"], out["eval_init/features"] = enc, z

    opt.step()
    out["step1"] = params(model)
    with torch.no_grad():
        enc, _, z = forward(model, x.detach())
    out["eval_step1/encoder_features"], out["eval_step1/features"] = enc, z

    model.train()
    opt.zero_grad()
    _, _, z = forward(model, x.detach())
    loss2 = loss_of(z, labels)
    out["after_forward2"] = buffers(model)
    loss2.backward()
    opt.step()
    out["step2"] = params(model)
    out["loss_step1"], out["loss_step2"] = loss1.item(), loss2.item()
    return out


def spatial_sizes(block, widths, state, x):
    model = new_model(block, widths).double()
    model.load_state_dict(state)
    sizes = {}
    hooks = [getattr(model.encoder, n).register_forward_hook(lambda m, i, o, n=n: sizes.__setitem__(n, o.shape[-1]))
             for n in ("bn1", "layer1", "layer2", "layer3", "layer4")]
    with torch.no_grad():
        model.encoder(x)
    for h in hooks:
        h.remove()
    return {"stem": sizes["bn1"], **{k: sizes[k] for k in ("layer1", "layer2", "layer3", "layer4")}}


def finite_differences(block, widths, state, x, labels, grads, grad_input, seed):
    """Central differences of the train-mode float64 loss at state, on 12
    parameter entries (eps 1e-6) and 4 input entries (eps 1e-5)."""
    model = new_model(block, widths).double()
    model.load_state_dict(state)
    model.train()
    named = dict(model.named_parameters())
    rng = random.Random(seed)

    def loss_at():
        with torch.no_grad():
            return loss_of(forward(model, x)[2], labels).item()

    worst = 0.0
    names = sorted(named)
    for _ in range(12):
        n = rng.choice(names)
        p = named[n].data.view(-1)
        k = rng.randrange(p.numel())
        orig = p[k].item()
        vals = []
        for s in (1, -1):
            p[k] = orig + s * 1e-6
            vals.append(loss_at())
        p[k] = orig
        worst = max(worst, abs((vals[0] - vals[1]) / 2e-6 - grads[n].view(-1)[k].item()))
    xf = x.view(-1)
    for _ in range(4):
        k = rng.randrange(xf.numel())
        orig = xf[k].item()
        vals = []
        for s in (1, -1):
            xf[k] = orig + s * 1e-5
            vals.append(loss_at())
        xf[k] = orig
        worst = max(worst, abs((vals[0] - vals[1]) / 2e-5 - grad_input.view(-1)[k].item()))
    return {
        "method": "central differences of the float64 loss, train mode",
        "eps_parameters": 1e-06,
        "eps_input": 1e-05,
        "checked_entries": 16,
        "checked_parameter_entries": 12,
        "checked_input_entries": 4,
        "max_abs_error": worst,
    }


def rel_max(a, b):
    """max |a[k]-b[k]| over every tensor of the dicts, over max |b[k]|."""
    num = max(max_abs(a[k], b[k]) for k in b)
    den = max(float(v.abs().max()) for v in b.values())
    return num / den


def describe(name, block, widths, seed, state, cases):
    expansion = 4 if block == "bottleneck" else 1
    param_names = [n for n, _ in new_model(block, widths).named_parameters()]
    buffer_names = [n for n, _ in new_model(block, widths).named_buffers()]
    return {
        "model": name,
        "tensors_file": name + ".safetensors",
        "dtype": "float64",
        "framework": f"PyTorch {torch.__version__} (CPU), whole computation in float64 (model.double())",
        "architecture": {
            "block": block,
            "expansion": expansion,
            "stem": {"conv": "3x3 stride 1 pad 1 no bias", "out_channels": widths[0], "then": "BN, ReLU, no max-pool"},
            "stage_widths": widths,
            "stage_strides": [1, 2, 2, 2],
            "blocks_per_stage": [1, 1, 1, 1],
            "stage_out_channels": [w * expansion for w in widths],
            "pool": "adaptive average pool to 1x1 (= mean over H,W), flatten",
            "encoder_dim": widths[3] * expansion,
            "feat_dim": FEAT_DIM,
            "head": "Linear(d,d) -> ReLU -> Linear(d,feat_dim) -> L2-normalise each row (F.normalize(dim=1, eps=1e-12))",
            "batchnorm": {"eps": 1e-05, "momentum": 0.1, "affine": True, "track_running_stats": True},
        },
        "init": {
            "seed": seed,
            "conv": "kaiming_normal_(mode=fan_out, nonlinearity=relu)",
            "bn": "weight 1, bias 0",
            "linear": "PyTorch default nn.Linear init",
            "note": "built in float32 under torch.manual_seed(seed) (conv weights then re-drawn with kaiming_normal_), then converted to float64; load init/* rather than reproduce the RNG",
        },
        "parameters": [{"name": n, "shape": list(state[n].shape)} for n in param_names],
        "buffers": [{"name": n, "shape": list(state[n].shape)} for n in buffer_names],
        "loss": {"type": "SupConLoss semantics (HobbitLong/SupContrast losses.py, HEAD with no-positive fix); testdata/gen/supcon_loss.py",
                 "temperature": TEMPERATURE, "base_temperature": BASE_TEMPERATURE, "contrast_mode": "all"},
        "optimizer": {"type": "SGD", **SGD, "applies_to": "every parameter (conv, BN weight/bias, Linear weight/bias); not to BN buffers"},
        "tensor_naming": {
            "init/<sd>": "every state_dict entry <sd> (parameters and BN buffers) at initialisation; shared by all cases",
            "<case>/input": "[N,3,H,W] input batch, N = bsz*n_views, view-major rows (row v*bsz+i = view v of sample i)",
            "<case>/train/encoder_features": "[N,d] encoder output (avg-pooled, flattened), train-mode forward with init params",
            "<case>/train/head_output": "[N,feat_dim] head output before L2 normalisation (same forward)",
            "<case>/train/features": "[N,feat_dim] L2-normalised head output = what the loss consumes",
            "<case>/grad/<param>": "dloss/dparam of loss_step1 at the init params (one tensor per parameter, same shape)",
            "<case>/grad_input": "[N,3,H,W] dloss/dinput of loss_step1",
            "<case>/after_forward1/<buffer>": "BN buffers after the first train-mode forward (init params)",
            "<case>/eval_init/encoder_features": "[N,d] eval-mode encoder output: init params + after_forward1 buffers",
            "<case>/eval_init/features": "[N,feat_dim] eval-mode normalised head output, same state",
            "<case>/step1/<param>": "parameters after one SGD step (only if has_step_tensors)",
            "<case>/eval_step1/encoder_features": "[N,d] eval-mode encoder output: step1 params + after_forward1 buffers",
            "<case>/eval_step1/features": "[N,feat_dim] eval-mode normalised head output, same state",
            "<case>/after_forward2/<buffer>": "BN buffers after the second train-mode forward (step1 params, same input)",
            "<case>/step2/<param>": "parameters after the second SGD step (only if has_step_tensors)",
        },
        "cases": cases,
    }


def draw_case(bsz, side, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * bsz, 3, side, side, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (bsz,), generator=g).tolist()
    return x, labels


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, block, widths, seed, case_specs in MODELS:
        state = init_state(block, widths, seed)
        tensors = [("init/" + k, v) for k, v in state.items()]
        cases = []
        for cname, bsz, side, in_seed, has_steps in case_specs:
            x, labels = draw_case(bsz, side, in_seed)
            r = run(block, widths, state, x, labels)
            r32 = run(block, widths, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, x.float(), labels, torch.float32)
            p = f"{cname}/"
            tensors.append((p + "input", x))
            for k in ("train/encoder_features", "train/head_output", "train/features"):
                tensors.append((p + k, r[k]))
            tensors.append((p + "grad_input", r["grad_input"]))
            tensors += [(p + "grad/" + k, v) for k, v in r["grad"].items()]
            tensors += [(p + "after_forward1/" + k, v) for k, v in r["after_forward1"].items()]
            tensors += [(p + k, r[k]) for k in ("eval_init/encoder_features", "eval_init/features")]
            if has_steps:
                tensors += [(p + "step1/" + k, v) for k, v in r["step1"].items()]
            tensors += [(p + k, r[k]) for k in ("eval_step1/encoder_features", "eval_step1/features")]
            tensors += [(p + "after_forward2/" + k, v) for k, v in r["after_forward2"].items()]
            if has_steps:
                tensors += [(p + "step2/" + k, v) for k, v in r["step2"].items()]

            f32 = {
                "loss_step1": r32["loss_step1"],
                "loss_step2": r32["loss_step2"],
                "max_abs_diff_train_features": max_abs(r32["train/features"], r["train/features"]),
                "max_abs_diff_eval_init_features": max_abs(r32["eval_init/features"], r["eval_init/features"]),
                "grad_max_abs_diff_over_max_abs_grad": rel_max(r32["grad"], r["grad"]),
                "after_forward1_max_abs_diff_over_max_abs": rel_max(r32["after_forward1"], r["after_forward1"]),
            }
            if has_steps:
                f32["step2_params_max_abs_diff"] = max(max_abs(r32["step2"][k], v) for k, v in r["step2"].items())
            fd = finite_differences(block, widths, state, x.clone(), labels, r["grad"], r["grad_input"], in_seed)
            if fd["max_abs_error"] > 1e-7:
                raise SystemExit(f"{name}/{cname}: finite differences off by {fd['max_abs_error']:g}")
            cases.append({
                "name": cname,
                "bsz": bsz,
                "n_views": 2,
                "n_rows": 2 * bsz,
                "image_shape": [3, side, side],
                "input_seed": in_seed,
                "has_step_tensors": has_steps,
                "labels": labels,
                "loss_step1": r["loss_step1"],
                "loss_step2": r["loss_step2"],
                "spatial_sizes": spatial_sizes(block, widths, state, x),
                "float32_reference": f32,
                "finite_difference_check": fd,
            })
            print(f"{name}/{cname}: labels {labels} loss_step1 {r['loss_step1']:.17g} loss_step2 {r['loss_step2']:.17g} "
                  f"finite differences {fd['max_abs_error']:.1e}")
        write_safetensors(os.path.join(out_dir, name + ".safetensors"), tensors)
        write_json(os.path.join(out_dir, name + ".json"), describe(name, block, widths, seed, state, cases))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "resnet"))
