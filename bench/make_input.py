#!/usr/bin/env python3
"""Write a train/eval body {"input": {"shape": [...], "data": [...]}} of
pseudo-random float32 values for the benchmarks: make_input.py OUT DIM..."""
import json
import random
import struct
import sys

out, dims = sys.argv[1], [int(d) for d in sys.argv[2:]]
count = 1
for d in dims:
    count *= d
rng = random.Random(1)
# Round through float32 so the JSON holds exactly what the server will read.
data = [struct.unpack("<f", struct.pack("<f", rng.gauss(0.5, 2.0)))[0] for _ in range(count)]
with open(out, "w") as f:
    json.dump({"input": {"shape": dims, "data": data}}, f)
