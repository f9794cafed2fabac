"""Write an IndexIDMap(IndexHNSWFlat) with faiss itself, so the TypeScript reader can be checked against
FAISS's own output. usage: write_faiss_hnsw.py <out.faiss> <vectors.f32.bin> <dims> <M> <metric ip|l2>"""
import sys

import faiss
import numpy as np

out, vec_path, d, M, metric = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
xb = np.fromfile(vec_path, dtype="<f4").reshape(-1, d)
m = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
index = faiss.IndexIDMap(faiss.IndexHNSWFlat(d, M, m))
index.add_with_ids(xb, np.arange(len(xb), dtype="int64") * 10 + 7)
faiss.write_index(index, out)
