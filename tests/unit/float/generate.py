#!/usr/bin/python3
"""Write cases.txt, the float format and parse table that test_float.c checks.

Run with /usr/bin/python3 (it needs numpy):  tests/unit/float/generate.py

Format lines, "F <float32 bits in hex> <text>": the text is NumPy's shortest
round-tripping digits for that float32 (np.format_float_scientific with
unique=True), spelled as Python's repr spells a float.

Parse lines, "P <text> <bits in hex | EBADMSG | EINVAL>": the float32 nearest
to the exact decimal value, ties to even, computed with fractions.Fraction;
EINVAL when that rounds past FLT_MAX; EBADMSG when the text is not a JSON
number.
"""
import os
import random
import re
import struct
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


def f32(bits):
    return np.frombuffer(struct.pack("<I", bits), "<f4")[0]


def bits_of(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def expected_text(bits):
    digits = np.format_float_scientific(f32(bits), unique=True)
    return repr(float(digits))


def round_to_f32(text):
    """The float32 bits nearest to the decimal text, or 'EINVAL' past FLT_MAX."""
    if not JSON_NUMBER.match(text):
        return "EBADMSG"
    neg = text.startswith("-")
    mant, _, exp = text.lstrip("-").lower().partition("e")
    if exp and abs(int(exp)) > 1000:
        # Far past either end: zero or beyond float32, whatever the digits.
        if mant.strip("0.") == "":
            return "%08x" % (0x80000000 if neg else 0)
        return "EINVAL" if int(exp) > 0 else "%08x" % (0x80000000 if neg else 0)
    x = abs(Fraction(text))
    if x == 0:
        return "%08x" % (0x80000000 if neg else 0)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    if Fraction(2) ** (e + 1) <= x:
        e += 1
    quantum = max(e, -126) - 23
    r = round(x / Fraction(2) ** quantum)  # Fraction rounds ties to even
    value = Fraction(r) * Fraction(2) ** quantum
    if value >= 2 ** 128:
        return "EINVAL"
    bits = bits_of(float(value))
    return "%08x" % (bits | (0x80000000 if neg else 0))


def format_bits():
    out = [0x00000000, 0x80000000, 0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff,
           0xff7fffff, 0x3f800000, 0xbf800000]
    for e in range(-149, 128):
        out.append(bits_of(2.0 ** e))
    for e in range(-45, 39):
        x = np.float32("1e%d" % e)
        b = bits_of(float(x))
        out += [b, b - 1, b + 1]
    for text in ["0.1", "-0.99998", "0.4976808", "1e-05", "1.5e-07", "3.4028235e+38",
                 "1e16", "9999999999999999", "0.0001", "0.00009999", "123456789",
                 "16777216", "16777217", "3.14159265", "2.7182817"]:
        out.append(bits_of(float(np.float32(text))))
    rng = random.Random(20240601)
    for _ in range(4000):
        b = rng.getrandbits(32)
        if (b >> 23) & 0xFF != 0xFF:
            out.append(b)
    return [b for b in dict.fromkeys(out) if 0 <= b < 2 ** 32 and (b >> 23) & 0xFF != 0xFF]


def parse_texts():
    out = ["0", "-0", "0.0", "-0.0", "0e0", "0E+5", "0.000", "1", "-1", "1.5", "1e5", "1E5",
           "1e+5", "1e-5", "1E-05", "0.1", "-0.99998", "0.4976808", "3.4028235e+38",
           "3.4028234663852886e+38", "3.4028235677973366e+38", "3.4028235677973362e+38",
           "340282356779733661637539395458142568447", "340282356779733661637539395458142568448",
           "1e39", "-1e39", "1e38", "1e-45", "1.4e-45", "7e-46", "7.006492321624085e-46",
           "7.006492321624086e-46", "1e-46", "1e-999999999", "-1e-999999999", "1e999999999",
           "1.000000059604644775390625", "1.0000000596046447753906250000000001",
           "1.0000000596046447753906249999999999", "1.00000017881393432617187500",
           "1.1754943508222875e-38", "1.1754942106924411e-38", "1.17549428e-38",
           "123456789012345678901234567890", "0.000000000000000000000000000000123456789",
           "16777217", "16777217.000000000000000000001", "33554434.999999999",
           "9007199254740993", "0.10000000149011612", "0.30000001192092896",
           "2.0000002384185791015625", "4.4408921e-16",
           "1" + "0" * 300 + "e-300", "0." + "0" * 300 + "1e300",
           "1." + "9" * 120, "0." + "0" * 40 + "7006492321624085354618647916449580656401309709382578858785341419448955413429303",
           "+1", "01", "-01", "00", ".5", "5.", "-.5", "0x10", "inf", "-inf", "nan", "NaN",
           "Infinity", "-Infinity", "1e", "1e+", "1e-", "-", "--1", "1.5.5", "1e5.5", "1e5e5",
           "1_0", "1,5", "1 ", " 1", "0.e1", "1.e5", "e5", "-e5", "1ee5", "1.0f", "١"]
    rng = random.Random(7)
    for _ in range(3000):
        b = rng.getrandbits(32)
        if (b >> 23) & 0xFF == 0xFF:
            continue
        x = float(f32(b))
        out.append(repr(x).replace("inf", "1e39"))
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
        digits = digits.lstrip("0") or "0"
        point = rng.randint(0, len(digits))
        mant = digits if point in (0, len(digits)) else digits[:point] + "." + digits[point:]
        text = ("-" if rng.random() < 0.3 else "") + mant + "e%d" % rng.randint(-75, 45)
        out.append(text)
    # Exact midpoints between neighbouring float32, and a hair either side.
    for _ in range(1000):
        b = rng.getrandbits(31)
        if (b >> 23) & 0xFF >= 0xFE:
            continue
        lo = Fraction(float(f32(b)))
        hi = Fraction(float(f32(b + 1)))
        mid = (lo + hi) / 2
        text = exact_decimal(mid)
        out += [text, text + "0000000000001"]
        out.append(exact_decimal(mid - Fraction(1, 10 ** 60)))
    return list(dict.fromkeys(out))


def exact_decimal(x):
    """x (a dyadic Fraction) as a plain decimal string, every digit written."""
    n, d = x.numerator, x.denominator
    scale = 0
    while d % 10 != 0 and d != 1:
        n *= 5 if d % 2 == 0 else 2
        d *= 5 if d % 2 == 0 else 2
    while d > 1:
        d //= 10
        scale += 1
    s = str(n).rjust(scale + 1, "0")
    if scale:
        s = s[:-scale] + "." + s[-scale:]
    if "." not in s:
        return s
    return s if s[-1] != "0" else s.rstrip("0").rstrip(".") or "0"


def main():
    lines = ["# Generated by tests/unit/float/generate.py with NumPy %s; do not edit." % np.__version__]
    for b in format_bits():
        lines.append("F %08x %s" % (b, expected_text(b)))
    for text in parse_texts():
        if " " in text or text == "":
            continue
        lines.append("P %s %s" % (text, round_to_f32(text)))
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
