#!/usr/bin/python3
"""Expected numbers for the browser test, computed by PyTorch.

The worked example of the API: BatchNorm2d(1, affine=False) trained 51 times
on [[[[0.0, 1.0]]]]. Writes golden.json next to this file with the running
statistics, the last batch's biased variance, and the two scales the
dashboard shows: 1/sqrt(batch_var + eps) (train) and 1/sqrt(running_var + eps)
(eval), each computed in float32 and spelled as the shortest float32 text.

    /usr/bin/python3 tests/web/golden.py
"""
import json
import os

import numpy as np
import torch



def shortest(t):
    # numpy prints a float32 with the fewest digits that read back as the same float32.
    return str(np.float32(t.item()))


def main():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(1, affine=False)
    bn.train()
    x = torch.tensor([[[[0.0, 1.0]]]])
    for _ in range(51):
        out = bn(x)
    eps = bn.eps
    batch_var = x.var(dim=(0, 2, 3), unbiased=False)
    batch_mean = x.mean(dim=(0, 2, 3))
    train_scale = torch.rsqrt(batch_var + eps)
    eval_scale = torch.rsqrt(bn.running_var + eps)
    bn.eval()
    eval_out = bn(x)
    golden = {
        "worked_example": {
            "config": {"num_features": 1, "affine": False},
            "input": x.tolist(),
            "steps": 51,
            "eps": eps,
            "train_output": [shortest(v) for v in out.flatten()],
            "eval_output": [shortest(v) for v in eval_out.flatten()],
            "num_batches_tracked": int(bn.num_batches_tracked.item()),
            "running_mean": shortest(bn.running_mean[0]),
            "running_var": shortest(bn.running_var[0]),
            "batch_mean": shortest(batch_mean[0]),
            "batch_var": shortest(batch_var[0]),
            "train_scale": shortest(train_scale[0]),
            "eval_scale": shortest(eval_scale[0]),
        },
        "generated_by": "tests/web/golden.py, torch " + torch.__version__,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
