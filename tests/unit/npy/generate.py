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
    save("f8_big_endian.npy", values((2, 3), ">f8"))
    save("f2_big_endian.npy", values((2, 3), ">f2"))
    # float64 that needs rounding to float32, with numpy's own rounding beside it:
    # ties to even, subnormals, float32's extremes, and float16 subnormals.
    tiny = np.float64(2.0) ** -149
    odd = np.array([0.1, 1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, -1 - 2.0 ** -24, 1 / 3, np.pi, 1e-40,
                    tiny * 0.5, tiny * 0.5000001, 3.4028234663852886e38, -3.40282356e38,
                    123456789.123, -0.0], dtype="<f8").reshape(1, 13)
    save("f8_round.npy", odd)
    save("f8_round_f4.npy", odd.astype("<f4"))
    halves = np.array([[0.0, -0.0, 2.0 ** -24, 2.0 ** -14, 65504.0, -65504.0, 0.333, 1e-7]], dtype="<f2")
    save("f2_odd.npy", halves)
    save("f2_odd_f4.npy", halves.astype("<f4"))
    # Beyond float32 once rounded: float32's largest plus half an ulp, a tie that rounds to infinity.
    save("f8_huge.npy", np.array([[1.0, 3.4028235677973366e38]], dtype="<f8"))
    f2inf = values((2, 3), "<f2")
    f2inf.flat[2] = np.inf
    save("f2_inf.npy", f2inf)
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
