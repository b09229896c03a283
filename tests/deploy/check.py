#!/usr/bin/env python3
"""JSON checks for tests/deploy/run, which drives the container with curl.

    check.py get FILE KEY            print the value at KEY (dotted, e.g. state.running_mean or layers.0.name) as JSON
    check.py has FILE KEY            exit 0 when KEY is present, 1 when it is absent
    check.py close ACTUAL EXPECTED   two JSON values: the same shape, numbers within float32 rounding
    check.py eq ACTUAL EXPECTED      two JSON values, exactly equal
    check.py nested GOLDEN           the golden {"shape", "data"} input as nested lists

A tensor in the {"shape", "data"} form compares as its flat data, so a nested
answer can be checked against golden data and the other way round. A failed
check prints what differed and exits 1.
"""
import json
import sys

# Relative tolerance: a few float32 ulps (2^-23 is about 1.2e-7). A wrong
# momentum, eps or variance formula is off by far more.
RTOL = 1e-6


def flat(v):
    if isinstance(v, dict) and set(v) == {"shape", "data"}:
        return flat(v["data"])
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(flat(x))
        return out
    return [v]


def lookup(doc, key):
    for part in key.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            raise KeyError(key)
    return doc


def nest(shape, data):
    if len(shape) == 1:
        return list(data)
    step = len(data) // shape[0]
    return [nest(shape[1:], data[i * step:(i + 1) * step]) for i in range(shape[0])]


def close(actual, expected):
    a, e = flat(actual), flat(expected)
    if len(a) != len(e):
        return f"{len(a)} values, expected {len(e)}"
    for i, (x, y) in enumerate(zip(a, e)):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return f"value {i} is {x!r}, not a number"
        if abs(x - y) > RTOL * max(1.0, abs(y)):
            return f"value {i} is {x!r}, expected {y!r}"
    return None


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd in ("get", "has"):
        with open(argv[2]) as f:
            doc = json.load(f)
        try:
            value = lookup(doc, argv[3])
        except KeyError:
            if cmd == "has":
                return 1
            print(f"no {argv[3]} in {json.dumps(doc)[:300]}", file=sys.stderr)
            return 1
        if cmd == "get":
            print(json.dumps(value))
        return 0
    if cmd == "nested":
        with open(argv[2]) as f:
            golden = json.load(f)
        print(json.dumps(nest(golden["input"]["shape"], golden["input"]["data"])))
        return 0
    if cmd in ("close", "eq"):
        actual, expected = json.loads(argv[2]), json.loads(argv[3])
        why = close(actual, expected) if cmd == "close" else (
            None if actual == expected else "not equal")
        if why:
            print(f"{argv[2]} vs expected {argv[3]}: {why}", file=sys.stderr)
            return 1
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
