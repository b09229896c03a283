#!/usr/bin/python3
"""Write the golden numbers of BatchNorm's other operations (tests/unit/test_stats.c
and tests/unit/test_backward.c check them).

Run from anywhere with the Python that has PyTorch 1.13:

    /usr/bin/python3 tests/golden/generate_ops.py

Seeded and single-threaded, so running it again writes the same ops.json.
float32 values are written as their shortest repr; float64 references as
Python's repr of the double (which reads back exactly). Sections:

  calibration   batches of inputs; "batch_average" is what
                torch.optim.swa_utils.update_bn leaves in a model holding one
                BatchNorm layer (running stats, num_batches_tracked), with the
                float64 average of per-batch means and unbiased variances;
                "population" the float64 NumPy mean and var(ddof=1) of the
                concatenated batches. Offset data (around 1e4) too, and the
                worked example (51 batches of [[[[0, 1]]]]).
  sync          per-worker count, mean and biased var (float64) of worker
                batches; "torch" is a BatchNorm layer's train step on the
                concatenated batch (what nn.SyncBatchNorm's all-gather update
                must equal: torch.batch_norm_gather_stats_with_counts is
                CUDA-only in torch 1.13), "f64" the float64 global mean,
                biased var and invstd.
  backward      autograd of torch.nn.functional.batch_norm in train and eval
                mode for ranks 2..5, affine or not, in float32 ("torch") and
                float64 ("f64").
  fold          torch.nn.utils.fusion.fuse_conv_bn_weights on an identity 1x1
                convolution: the diagonal is scale, the bias is shift.
"""

import json
import os

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torch.optim.swa_utils import update_bn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261201


def f32(t):
    out = []
    for v in np.asarray(t.detach().numpy() if torch.is_tensor(t) else t,
                        dtype=np.float32).reshape(-1):
        x = float(str(v))
        assert np.float32(x) == v
        out.append(x)
    return out


def f64(a):
    a = a.detach().numpy() if torch.is_tensor(a) else a
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def tensor_json(t):
    return {"shape": list(t.shape), "data": f32(t)}


def per_channel(x):
    """float64 (C, n) view of a float32 (N, C, ...) tensor."""
    a = x.detach().numpy().astype(np.float64)
    c = a.shape[1]
    return np.moveaxis(a, 1, 0).reshape(c, -1)


def bn_cls(rank):
    return {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d,
            4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[rank]


def calibration_case(name, batches):
    c = batches[0].shape[1]
    model = torch.nn.Sequential(bn_cls(batches[0].dim())(c))
    update_bn(batches, model)
    bn = model[0]
    chans = [per_channel(b) for b in batches]
    allv = np.concatenate(chans, axis=1)
    return {
        "name": name,
        "batches": [tensor_json(b) for b in batches],
        "batch_average": {
            "torch": {"running_mean": f32(bn.running_mean), "running_var": f32(bn.running_var),
                      "num_batches_tracked": int(bn.num_batches_tracked)},
            "f64": {"mean": f64(np.mean([ch.mean(axis=1) for ch in chans], axis=0)),
                    "var": f64(np.mean([ch.var(axis=1, ddof=1) for ch in chans], axis=0))},
        },
        "population": {"count": int(allv.shape[1]),
                       "mean": f64(allv.mean(axis=1)), "var": f64(allv.var(axis=1, ddof=1))},
    }


def calibration(gen):
    cases = []
    batches = [torch.randn(4, 3, 2, 2, generator=gen) * (1 + i) + i for i in range(5)]
    cases.append(calibration_case("rank4", batches))
    batches = [torch.randn(n, 2, generator=gen) for n in (7, 3, 12)]
    cases.append(calibration_case("rank2_uneven", batches))
    batches = [(torch.randn(64, 4, generator=gen) + 1e4) for _ in range(4)]
    cases.append(calibration_case("offset_1e4", batches))
    batches = [torch.tensor([[[[0.0, 1.0]]]]) for _ in range(51)]
    cases.append(calibration_case("worked_example", batches))
    return cases


def sync(gen):
    cases = []
    for name, counts, c, offset, momentum in (("three_workers", (8, 5, 16), 3, 0.0, 0.1),
                                              ("offset_cumulative", (32, 32), 2, 1e4, None),
                                              ("single_values", (1, 1, 1), 2, 0.0, 0.1)):
        workers = [torch.randn(n, c, generator=gen) + offset for n in counts]
        bn = torch.nn.BatchNorm1d(c, momentum=momentum)
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1, generator=gen)
            bn.running_var.uniform_(0.5, 2, generator=gen)
        init = {"running_mean": f32(bn.running_mean), "running_var": f32(bn.running_var)}
        full = torch.cat(workers)
        bn.train()
        bn(full)
        allv = per_channel(full)
        var = allv.var(axis=1)
        cases.append({
            "name": name, "momentum": momentum, "eps": 1e-5, "init": init,
            "workers": [{"count": n, "mean": f64(per_channel(w).mean(axis=1)),
                         "var": f64(per_channel(w).var(axis=1))} for n, w in zip(counts, workers)],
            "torch": {"running_mean": f32(bn.running_mean), "running_var": f32(bn.running_var),
                      "num_batches_tracked": int(bn.num_batches_tracked)},
            "f64": {"mean": f64(allv.mean(axis=1)), "var": f64(var),
                    "invstd": f64(1 / np.sqrt(var + 1e-5))},
        })
    return cases


def grads(x, dy, w, b, rm, rv, train, eps, dtype):
    x = x.detach().to(dtype).requires_grad_()
    params = []
    if w is not None:
        w = w.detach().to(dtype).requires_grad_()
        b = b.detach().to(dtype).requires_grad_()
        params = [w, b]
    y = torch.nn.functional.batch_norm(x, rm.to(dtype).clone(), rv.to(dtype).clone(), w, b,
                                       training=train, momentum=0.1, eps=eps)
    y.backward(dy.to(dtype))
    out = {"grad_input": x.grad}
    if params:
        out["grad_weight"], out["grad_bias"] = w.grad, b.grad
    return out


def backward(gen):
    cases = []
    shapes = {2: (6, 3), 3: (4, 3, 5), 4: (3, 2, 3, 4), 5: (2, 2, 2, 3, 2)}
    for rank, shape in shapes.items():
        for affine in (True, False):
            for mode in ("train", "eval"):
                c = shape[1]
                x = torch.randn(*shape, generator=gen) * 2 + 0.5
                dy = torch.randn(*shape, generator=gen)
                w = torch.rand(c, generator=gen) + 0.5 if affine else None
                b = torch.randn(c, generator=gen) if affine else None
                rm = torch.randn(c, generator=gen)
                rv = torch.rand(c, generator=gen) + 0.5
                case = {"name": "rank%d_%s_%s" % (rank, "affine" if affine else "plain", mode),
                        "mode": mode, "eps": 1e-5, "input": tensor_json(x),
                        "grad_output": tensor_json(dy),
                        "state": {"running_mean": f32(rm), "running_var": f32(rv)}}
                if affine:
                    case["state"]["weight"], case["state"]["bias"] = f32(w), f32(b)
                for key, dtype, conv in (("torch", torch.float32, f32), ("f64", torch.float64, f64)):
                    g = grads(x, dy, w, b, rm, rv, mode == "train", 1e-5, dtype)
                    case[key] = {k: conv(v) for k, v in g.items()}
                cases.append(case)
    return cases


def fold(gen):
    cases = []
    for c, eps in ((4, 1e-5), (3, 1e-3)):
        w, b = torch.rand(c, generator=gen) + 0.5, torch.randn(c, generator=gen)
        rm, rv = torch.randn(c, generator=gen) * 3, torch.rand(c, generator=gen) * 4 + 0.01
        conv_w = torch.eye(c).reshape(c, c, 1, 1)
        fw, fb = fuse_conv_bn_weights(conv_w, torch.zeros(c), rm, rv, eps, w, b)
        w64, b64, rm64, rv64 = (t.double() for t in (w, b, rm, rv))
        scale = w64 / torch.sqrt(rv64 + eps)
        cases.append({"eps": eps, "state": {"weight": f32(w), "bias": f32(b),
                                            "running_mean": f32(rm), "running_var": f32(rv)},
                      "torch": {"scale": f32(torch.diagonal(fw.reshape(c, c))), "shift": f32(fb)},
                      "f64": {"scale": f64(scale), "shift": f64(b64 - rm64 * scale)}})
    return cases


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    out = {"torch_version": torch.__version__, "calibration": calibration(gen),
           "sync": sync(gen), "backward": backward(gen), "fold": fold(gen)}
    with open(os.path.join(HERE, "ops.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
