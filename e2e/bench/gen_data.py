#!/usr/bin/env python3
"""Deterministic benchmark data: the same seed always gives the same files, byte for byte.

usage: gen_data.py DIR COUNT MIN_BYTES MAX_BYTES SEED
Sizes are log-uniform between MIN_BYTES and MAX_BYTES (equal bounds: fixed size). Contents come
from a seeded PRNG so they are incompressible and identical for relocate and rclone. Files are
spread over 100 sub-directories, as object keys usually have a few levels.
"""
import math
import os
import random
import sys


def main() -> None:
    out, count, lo, hi, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rng = random.Random(seed)
    chunk = 1 << 20
    for i in range(count):
        size = lo if lo == hi else int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        path = os.path.join(out, f"d{i % 100:02d}", f"obj-{i:07d}.bin")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                n = min(chunk, left)
                f.write(rng.randbytes(n))
                left -= n


if __name__ == "__main__":
    main()
