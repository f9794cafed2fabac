"""Load a .faiss written by Embedding Lens with faiss.read_index, search it, and rebuild the same index
with faiss itself to compare the bytes.

usage: check_faiss.py <file.faiss> <vectors.f32.bin> <ids.i64.bin> <queries.f32.bin> <dims> <k> [efSearch]
Prints one JSON object: index class names, ntotal, d, metric, search ids/distances per query, and (for
Flat indexes) whether faiss.serialize_index of an IndexIDMap(IndexFlat*) built from the same vectors and
ids equals our file byte for byte.
"""
import json
import sys

import faiss
import numpy as np

path, vec_path, ids_path, q_path = sys.argv[1:5]
d, k = int(sys.argv[5]), int(sys.argv[6])
ef = int(sys.argv[7]) if len(sys.argv) > 7 else None

index = faiss.read_index(path)
inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
out = {
    "outer": type(index).__name__,
    "inner": type(inner).__name__,
    "ntotal": int(index.ntotal),
    "d": int(index.d),
    "metric": "ip" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2",
    "faiss_version": faiss.__version__,
}
if ef is not None and hasattr(inner, "hnsw"):
    inner.hnsw.efSearch = ef
    out["hnsw_max_level"] = int(inner.hnsw.max_level)
queries = np.fromfile(q_path, dtype="<f4").reshape(-1, d)
D, I = index.search(queries, k)
out["ids"] = I.tolist()
out["distances"] = D.tolist()

xb = np.fromfile(vec_path, dtype="<f4").reshape(-1, d)
ids = np.fromfile(ids_path, dtype="<i8")
if out["inner"] in ("IndexFlatIP", "IndexFlatL2", "IndexFlat"):
    flat = faiss.IndexFlatIP(d) if out["metric"] == "ip" else faiss.IndexFlatL2(d)
    ref = faiss.IndexIDMap(flat)
    if len(ids):
        ref.add_with_ids(xb, ids)
    ours = open(path, "rb").read()
    theirs = faiss.serialize_index(ref).tobytes()
    out["bytes_equal"] = ours == theirs
    out["sizes"] = [len(ours), len(theirs)]
    # faiss's own exact search on the same data, for a second reference
    D2, I2 = ref.search(queries, k)
    out["reference_ids"] = I2.tolist()
print(json.dumps(out))
