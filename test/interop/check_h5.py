"""Dump an .h5 written by Embedding Lens as h5py sees it, for the TypeScript test to compare.

usage: check_h5.py <file.h5>
Prints one JSON object: every dataset (shape, dtype, chunks, compression, values as lists; strings
decoded as UTF-8) and the root attributes. Float32 values are exact in JSON (doubles round-trip).
"""
import json
import sys

import h5py
import numpy as np


def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()] if v.dtype.kind in "OS" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


out = {"datasets": {}, "attrs": {}}
with h5py.File(sys.argv[1], "r") as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            if h5py.check_string_dtype(obj.dtype) is not None:
                values = [plain(x) for x in obj.asstr()[()].tolist()]
                dtype = "string"
            else:
                values = obj[()].tolist()
                dtype = str(obj.dtype)
            out["datasets"][name] = {
                "shape": list(obj.shape),
                "dtype": dtype,
                "chunks": list(obj.chunks) if obj.chunks else None,
                "compression": obj.compression,
                "values": values,
            }
    f.visititems(visit)
    for k, v in f.attrs.items():
        out["attrs"][k] = {"value": plain(v), "type": type(v).__name__, "dtype": str(getattr(v, "dtype", ""))}
    # The ragged layout as an h5py user would read it: item i = tokens[off[i]:off[i+1]].
    if "tokens" in f:
        off = f["token_offsets"][()]
        out["ragged_row_sums"] = [float(np.asarray(f["tokens"][off[i]:off[i + 1]], dtype=np.float64).sum()) for i in range(len(off) - 1)]
print(json.dumps(out))
