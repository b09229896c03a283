#!/usr/bin/python3
"""Write the golden BatchNorm numbers that tests/unit/test_golden.c checks.

Run from anywhere with the Python that has PyTorch 1.13:

    /usr/bin/python3 tests/golden/generate.py

It is seeded and single-threaded, so running it again writes the same
files. Every float32 is written as its shortest decimal repr, which reads
back to the same float32. Files (all in this directory):

  cases.json            BatchNorm1d/2d/3d layers over ranks 2..5: the
                        config, the initial state, then for each train
                        step the input, output, batch mean and biased
                        variance, running stats and num_batches_tracked,
                        then eval inputs and outputs.
  worked_example.json   the worked example of API.md, checked here
                        against the digits API.md prints.
  offset.json           (N, C) data around 1e4 with a spread of 1:
                        PyTorch's float32 statistics and float64 ones.

batch_mean and batch_var (biased) are those of PyTorch's BatchNorm CPU
kernel itself, as torch.batch_norm_update_stats returns them.
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261123


def f32_list(t):
    """A tensor's values as Python floats that print as float32's shortest repr."""
    out = []
    for v in t.detach().reshape(-1).numpy().astype(np.float32):
        s = str(v)
        x = float(s)
        assert np.float32(x) == v, (s, v)
        out.append(x)
    return out


def tensor_json(t):
    return {"shape": list(t.shape), "data": f32_list(t)}


def module_for(rank, c, momentum, affine, track, eps):
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d,
           4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[rank]
    return cls(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)


def state_json(bn):
    s = {}
    if bn.affine:
        s["weight"] = f32_list(bn.weight)
        s["bias"] = f32_list(bn.bias)
    if bn.track_running_stats:
        s["running_mean"] = f32_list(bn.running_mean)
        s["running_var"] = f32_list(bn.running_var)
        s["num_batches_tracked"] = int(bn.num_batches_tracked)
    return s


def make_input(gen, shape, constant_channel=None):
    """Per-channel scale and offset, so each channel has its own statistics."""
    c = shape[1]
    bshape = [1, c] + [1] * (len(shape) - 2)
    scale = torch.rand(c, generator=gen) * 2.5 + 0.5
    offset = torch.rand(c, generator=gen) * 4 - 2
    x = torch.randn(*shape, generator=gen) * scale.reshape(bshape) + offset.reshape(bshape)
    if constant_channel is not None:
        x[:, constant_channel] = 1.25
    return x.float()


def batch_stats(x):
    """The batch mean and biased variance of PyTorch's own BatchNorm CPU kernel."""
    return torch.batch_norm_update_stats(x, None, None, 0.0)


def run_case(gen, name, shape, momentum=0.1, affine=True, track=True, eps=1e-5,
             steps=3, evals=1, loaded_stats=False, constant_channel=None):
    rank, c = len(shape), shape[1]
    bn = module_for(rank, c, momentum, affine, track, eps)
    with torch.no_grad():
        if affine:
            bn.weight.copy_(torch.randn(c, generator=gen) * 1.5)
            bn.bias.copy_(torch.randn(c, generator=gen))
        if track and loaded_stats:
            bn.running_mean.copy_(torch.randn(c, generator=gen))
            bn.running_var.copy_(torch.rand(c, generator=gen) * 3 + 0.1)
            bn.num_batches_tracked.fill_(4)
    case = {
        "name": name,
        "module": type(bn).__name__,
        "config": {"num_features": c, "eps": eps, "momentum": momentum,
                   "affine": affine, "track_running_stats": track},
        "state": state_json(bn),
        "train": [],
        "eval": [],
    }
    bn.train()
    for _ in range(steps):
        x = make_input(gen, shape, constant_channel)
        with torch.no_grad():
            y = bn(x)
        mean, var = batch_stats(x)
        step = {"input": tensor_json(x), "output": f32_list(y),
                "batch_mean": f32_list(mean), "batch_var": f32_list(var)}
        step.update({k: v for k, v in state_json(bn).items() if k not in ("weight", "bias")})
        case["train"].append(step)
    bn.eval()
    for _ in range(evals):
        x = make_input(gen, shape, constant_channel)
        with torch.no_grad():
            y = bn(x)
        case["eval"].append({"input": tensor_json(x), "output": f32_list(y)})
    return case


def all_cases():
    gen = torch.Generator().manual_seed(SEED)
    cases = []
    shapes = {2: (6, 5), 3: (4, 3, 7), 4: (2, 3, 3, 5), 5: (2, 2, 2, 3, 3)}
    for rank, shape in shapes.items():
        cases.append(run_case(gen, f"rank{rank}_momentum0.1", shape))
        cases.append(run_case(gen, f"rank{rank}_momentum0.3_noaffine", shape,
                              momentum=0.3, affine=False))
        cases.append(run_case(gen, f"rank{rank}_cumulative", shape, momentum=None, steps=4))
        cases.append(run_case(gen, f"rank{rank}_untracked", shape, track=False, evals=2))
        cases.append(run_case(gen, f"rank{rank}_untracked_noaffine", shape,
                              track=False, affine=False))
    for rank, shape in ((2, (5, 3)), (4, (2, 3, 2, 5))):
        cases.append(run_case(gen, f"rank{rank}_momentum0", shape, momentum=0.0, loaded_stats=True))
        cases.append(run_case(gen, f"rank{rank}_momentum1", shape, momentum=1.0, loaded_stats=True))
        cases.append(run_case(gen, f"rank{rank}_cumulative_loaded", shape, momentum=None,
                              loaded_stats=True))
    cases.append(run_case(gen, "n2_rank2", (2, 3)))
    cases.append(run_case(gen, "n2_rank2_cumulative", (2, 4), momentum=None, steps=5))
    cases.append(run_case(gen, "n2_rank3_batch1", (1, 3, 2), momentum=0.3))
    cases.append(run_case(gen, "n2_rank4_batch1", (1, 2, 1, 2), affine=False, track=False))
    cases.append(run_case(gen, "rank4_spatial1", (8, 3, 1, 1)))
    cases.append(run_case(gen, "rank2_wide", (8, 21), momentum=0.3, steps=2))
    cases.append(run_case(gen, "rank3_long", (2, 2, 67), eps=1e-3, steps=2))
    cases.append(run_case(gen, "rank4_constant_channel", (2, 3, 3, 3), constant_channel=1))
    cases.append(run_case(gen, "rank2_constant_channel", (7, 3), constant_channel=0))
    return cases


def worked_example():
    """API.md: BatchNorm2d(1, affine=False), [[[[0.0, 1.0]]]], 51 train steps, then eval."""
    bn = torch.nn.BatchNorm2d(1, affine=False)
    x = torch.tensor([[[[0.0, 1.0]]]])
    bn.train()
    with torch.no_grad():
        for _ in range(51):
            y_train = bn(x)
        bn.eval()
        y_eval = bn(x)
    out = {
        "config": {"num_features": 1, "eps": 1e-5, "momentum": 0.1,
                   "affine": False, "track_running_stats": True},
        "input": tensor_json(x),
        "steps": 51,
        "train_output": f32_list(y_train),
        "running_mean": f32_list(bn.running_mean),
        "running_var": f32_list(bn.running_var),
        "num_batches_tracked": int(bn.num_batches_tracked),
        "eval_output": f32_list(y_eval),
    }
    # The digits API.md prints (7 significant, 5 for the train output) must be PyTorch's.
    def digits(values, n):
        return [f"{v:.{n}g}" for v in values]
    assert digits(out["running_mean"], 7) == ["0.4976808"], out
    assert digits(out["running_var"], 7) == ["0.5023191"], out
    assert out["num_batches_tracked"] == 51
    assert digits(out["eval_output"], 7) == ["-0.7021934", "0.7087377"], out
    assert digits(out["train_output"], 5) == ["-0.99998", "0.99998"], out
    return out


def offset_case():
    """(N, C) float32 around 1e4 with a spread of 1, where float sums lose digits."""
    n, c = 4096, 4
    gen = torch.Generator().manual_seed(SEED + 1)
    x = (torch.randn(n, c, generator=gen, dtype=torch.float64) + 1e4).float()
    # momentum 1 makes running_mean the batch mean and running_var the
    # unbiased batch variance exactly as the BatchNorm kernel computed them.
    bn = torch.nn.BatchNorm1d(c, affine=False, momentum=1.0)
    bn.train()
    with torch.no_grad():
        bn(x)
    xd = x.double()
    return {
        "input": tensor_json(x),
        "torch_float32_mean": f32_list(bn.running_mean),
        "torch_float32_unbiased_var": f32_list(bn.running_var),
        "float64_mean": xd.mean(dim=0).tolist(),
        "float64_unbiased_var": xd.var(dim=0, unbiased=True).tolist(),
        "float64_biased_var": xd.var(dim=0, unbiased=False).tolist(),
    }


def write(name, obj):
    obj = {"generator": "tests/golden/generate.py", "torch_version": torch.__version__,
           "torch_threads": torch.get_num_threads(), "seed": SEED, **obj}
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    if not torch.__version__.startswith("1.13"):
        sys.exit(f"expected PyTorch 1.13, got {torch.__version__}")
    torch.set_num_threads(1)
    write("cases.json", {"cases": all_cases()})
    write("worked_example.json", worked_example())
    write("offset.json", offset_case())


if __name__ == "__main__":
    main()
