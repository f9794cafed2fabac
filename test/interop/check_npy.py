"""Read a .npy written by Embedding Lens with numpy's own np.load and compare it with a reference.

usage: check_npy.py <file.npy> <reference.f32.bin> <rows> <dims>
The reference is the same rows as raw little-endian float32. For float16 files the expected values are
numpy's own float32 -> float16 conversion of the reference (round to nearest even), compared bit for bit.
Prints one JSON object.
"""
import json
import sys

import numpy as np

path, ref_path, rows, dims = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
arr = np.load(path, allow_pickle=False)
ref = np.fromfile(ref_path, dtype="<f4").reshape(rows, dims)
out = {"shape": list(arr.shape), "dtype": str(arr.dtype), "fortran": bool(np.isfortran(arr)) if arr.ndim > 1 else False}
if arr.dtype == np.float16:
    expected = ref.astype(np.float16)
    mism = int(np.count_nonzero(arr.view(np.uint16) != expected.view(np.uint16)))
elif arr.dtype == np.float32:
    mism = int(np.count_nonzero(arr.view(np.uint32) != ref.view(np.uint32)))
else:
    mism = -1
out["bit_mismatches"] = mism
with open(path, "rb") as f:
    major, minor = np.lib.format.read_magic(f)
out["version"] = [major, minor]
print(json.dumps(out))
