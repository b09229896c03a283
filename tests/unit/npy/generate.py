#!/usr/bin/python3
"""Write the .npy files test_npy.c reads, with numpy itself.

Run with /usr/bin/python3 (it needs numpy):  tests/unit/npy/generate.py

Values follow formulas the test recomputes: value i of every float file is
i * 0.25 - 1 (exact in float32), except where a file exists to carry a
NaN or an infinity.
"""
import io
import os

import numpy as np
from numpy.lib import format as npf

HERE = os.path.dirname(os.path.abspath(__file__))


def values(shape, dtype="<f4"):
    n = int(np.prod(shape))
    return (np.arange(n, dtype="<f8") * 0.25 - 1).astype(dtype).reshape(shape)


def save(name, array, version=None):
    buf = io.BytesIO()
    npf.write_array(buf, array, version=version, allow_pickle=False)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(buf.getvalue())


def main():
    save("f4_2x3.npy", values((2, 3)))
    save("f4_rank1.npy", values((7,)))
    save("f4_rank5.npy", values((2, 1, 3, 1, 2)))
    save("f4_4x3x5.npy", values((4, 3, 5)))
    save("f4_v2.npy", values((2, 3)), version=(2, 0))
    save("f4_v3.npy", values((3, 2)), version=(3, 0))
    save("f8.npy", values((2, 3), "<f8"))
    save("f4_big_endian.npy", values((2, 3), ">f4"))
    save("i4.npy", values((2, 3), "<i4"))
    save("f2.npy", values((2, 3), "<f2"))
    save("fortran.npy", np.asfortranarray(values((2, 3))))
    save("scalar.npy", np.float32(1.5).reshape(()))
    save("empty.npy", np.zeros((0, 3), dtype="<f4"))
    save("rank6.npy", values((1, 2, 1, 2, 1, 2)))
    structured = np.zeros((2,), dtype=[("a", "<f4"), ("b", "<f4")])
    save("structured.npy", structured)
    nan = values((2, 3))
    nan.flat[4] = np.nan
    save("nan.npy", nan)
    inf = values((3, 2))
    inf.flat[5] = -np.inf
    save("neg_inf.npy", inf)


if __name__ == "__main__":
    main()
