"""Retrieval latency at 10k and 100k chunks: LanceDB (exact scan and IVF-PQ ANN index) vs exact numpy search.

Vectors are 384-d like all-MiniLM-L6-v2's, drawn as a Gaussian mixture (200 topics) and normalised, so nearest
neighbours are meaningful; queries are perturbed stored vectors. recall@5 is measured against numpy's exact
top-5. Every search goes through `KnowledgeBase.search_vector` (the path the director uses, with hit decoding).

    .venv/bin/python bench/bench_retrieval.py [--sizes 10000 100000] [--queries 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time

import numpy as np

DIM = 384


class _BenchEmbedder:
    """Only the dimension matters here: vectors are inserted and queried directly."""

    model_id = "bench-random@1"
    heavy = False
    dim = DIM

    def embed(self, texts):
        raise RuntimeError("the retrieval bench queries by vector")


def make_vectors(n: int, rng: np.random.Generator, topics: int = 200) -> np.ndarray:
    centers = rng.standard_normal((topics, DIM)).astype(np.float32)
    x = centers[rng.integers(0, topics, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_topk(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    sims = matrix @ q
    idx = np.argpartition(-sims, k)[:k]
    return idx[np.argsort(-sims[idx])]


def run(n: int, n_queries: int, seed: int = 0) -> dict:
    folder = tempfile.mkdtemp(prefix=f"bench-kb-{n}-")
    try:
        return _run(n, n_queries, seed, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(n: int, n_queries: int, seed: int, folder: str) -> dict:
    import pyarrow as pa

    from studio.resources.knowledge.store import KnowledgeBase

    rng = np.random.default_rng(seed)
    vecs = make_vectors(n, rng)
    ids = [f"chunk-{i}" for i in range(n)]
    kb = KnowledgeBase(folder + "/k.lance", _BenchEmbedder())
    table = kb._table("film_scenes", create=True)
    t0 = time.perf_counter()
    for start in range(0, n, 20_000):
        end = min(n, start + 20_000)
        table.add(pa.table({
            "id": ids[start:end], "doc_id": ids[start:end], "text": [f"scene {i}" for i in range(start, end)],
            "title": [""] * (end - start), "source": [""] * (end - start), "origin": ["bench"] * (end - start),
            "kind": ["scene"] * (end - start),
            "characters": [["bunny"] if i % 7 == 0 else [] for i in range(start, end)],
            "metadata": ["{}"] * (end - start), "content_hash": [""] * (end - start),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[start:end].ravel()), DIM),
        }, schema=kb._schema()))
    insert_s = time.perf_counter() - t0
    queries = vecs[rng.integers(0, n, n_queries)] + 0.05 * rng.standard_normal((n_queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def timed(fn) -> tuple[list[float], list]:
        fn(queries[0])  # warm-up (file handles, caches)
        lat, out = [], []
        for q in queries:
            t = time.perf_counter()
            out.append(fn(q))
            lat.append((time.perf_counter() - t) * 1000)
        return lat, out

    np_lat, np_res = timed(lambda q: exact_topk(vecs, q, 5))
    truth = [{ids[i] for i in r} for r in np_res]
    flat_lat, flat_res = timed(lambda q: kb.search_vector(q, "film_scenes", 5))
    t0 = time.perf_counter()
    kb.ensure_index("film_scenes", min_rows=0)
    index_s = time.perf_counter() - t0
    ann_lat, ann_res = timed(lambda q: kb.search_vector(q, "film_scenes", 5, nprobes=20, refine_factor=10))
    filt_lat, _ = timed(lambda q: kb.search_vector(q, "film_scenes", 5, where={"character": "bunny"}, nprobes=20,
                                                  refine_factor=10))

    def recall(res) -> float:
        return statistics.mean(len({h.id for h in r} & t) / 5 for r, t in zip(res, truth, strict=True))

    med = statistics.median
    return {
        "chunks": n, "queries": n_queries, "insert_s": round(insert_s, 2), "index_build_s": round(index_s, 2),
        "numpy_exact_ms": round(med(np_lat), 3), "lance_flat_ms": round(med(flat_lat), 3),
        "lance_ann_ms": round(med(ann_lat), 3), "lance_ann_filtered_ms": round(med(filt_lat), 3),
        "ann_vs_numpy_ratio": round(med(ann_lat) / med(np_lat), 2),
        "recall@5_flat": round(recall(flat_res), 4), "recall@5_ann": round(recall(ann_res), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = [run(n, args.queries) for n in args.sizes]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
