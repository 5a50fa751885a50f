"""Documents for the knowledge base: the knowledge pack (markdown/YAML/JSON) and finished shorts' manifests.

Markdown files start with YAML front matter (`collection:`, `characters:`, `title:`, `kind:`); each `##` section
becomes one chunk, so editing one section re-embeds one chunk. YAML/JSON files hold `collection:` and a list of
`docs:` (`id`, `text`, optional `characters`, `kind`). Files without a collection (README.md) are skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from studio.resources.knowledge.store import COLLECTIONS, KnowledgeBase, KnowledgeDoc, KnowledgeError, UpsertStats

PACK_ORIGIN = "pack"
GENERATION_ORIGIN = "generation"
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "section"


def _check(path: Path, collection: Any) -> str:
    if collection not in COLLECTIONS:
        raise KnowledgeError(f"{path}: 'collection: {collection}' is not one of {', '.join(COLLECTIONS)}")
    return str(collection)


def _markdown_docs(path: Path, rel: str) -> tuple[str, list[KnowledgeDoc]] | None:
    text = path.read_text(encoding="utf-8")
    m = _FRONT.match(text)
    if not m:
        return None
    try:
        front = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: front matter is not valid YAML: {e}") from None
    if "collection" not in front:
        return None
    collection = _check(path, front["collection"])
    body = text[m.end():]
    title = str(front.get("title") or path.stem)
    base = {"title": title, "source": rel, "doc_id": rel, "kind": str(front.get("kind", "")),
            "characters": [str(c) for c in front.get("characters", [])]}
    docs = []
    # A leading "# Title" line is part of the title, not a chunk of its own.
    sections = re.split(r"^##\s+", body, flags=re.M)
    intro = re.sub(r"^#\s+.*$", "", sections[0], flags=re.M).strip()
    if intro:
        docs.append(KnowledgeDoc(id=f"{rel}#intro", text=f"{title}\n{intro}", metadata={**base, "section": ""}))
    seen: dict[str, int] = {}
    for sec in sections[1:]:
        heading, _, content = sec.partition("\n")
        content = " ".join(content.split())
        if not content:
            continue
        slug = _slug(heading)
        seen[slug] = seen.get(slug, 0) + 1
        sid = slug if seen[slug] == 1 else f"{slug}-{seen[slug]}"
        docs.append(KnowledgeDoc(id=f"{rel}#{sid}", text=f"{title} — {heading.strip()}: {content}",
                                 metadata={**base, "section": heading.strip()}))
    return collection, docs


def _structured_docs(path: Path, rel: str) -> tuple[str, list[KnowledgeDoc]] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.suffix in (".yaml", ".yml") \
            else json.loads(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise KnowledgeError(f"{path}: cannot parse: {e}") from None
    if not isinstance(data, dict) or "collection" not in data:
        return None
    collection = _check(path, data["collection"])
    docs = []
    for i, item in enumerate(data.get("docs") or []):
        if not isinstance(item, dict) or not str(item.get("text", "")).strip():
            raise KnowledgeError(f"{path}: docs[{i}] needs a non-empty 'text'")
        local = str(item.get("id") or i)
        meta = {"title": str(item.get("title") or data.get("title") or path.stem), "source": rel, "doc_id": rel,
                "kind": str(item.get("kind") or data.get("kind", "")),
                "characters": [str(c) for c in item.get("characters", [])]}
        docs.append(KnowledgeDoc(id=f"{rel}#{local}", text=" ".join(str(item["text"]).split()), metadata=meta))
    return collection, docs


def load_pack(pack_dir: Path) -> dict[str, list[KnowledgeDoc]]:
    """All documents of a pack, by collection (every collection key present, possibly empty)."""
    pack_dir = Path(pack_dir)
    if not pack_dir.is_dir():
        raise KnowledgeError(f"knowledge pack folder {pack_dir} does not exist; set STUDIO_KNOWLEDGE_DIR or "
                             "pass --pack")
    out: dict[str, list[KnowledgeDoc]] = {c: [] for c in COLLECTIONS}
    for path in sorted(pack_dir.rglob("*")):
        if not path.is_file() or any(p.startswith(".") for p in path.relative_to(pack_dir).parts):
            continue
        rel = path.relative_to(pack_dir).as_posix()
        if path.suffix == ".md":
            got = _markdown_docs(path, rel)
        elif path.suffix in (".yaml", ".yml", ".json"):
            got = _structured_docs(path, rel)
        else:
            continue  # reference images and other media are not text
        if got:
            out[got[0]].extend(got[1])
    return out


def index_pack(kb: KnowledgeBase, pack_dir: Path) -> dict[str, UpsertStats]:
    """Sync every collection with the pack: embeds changed chunks only and deletes removed ones."""
    docs = load_pack(pack_dir)
    return {c: kb.sync(c, ds, origin=PACK_ORIGIN) for c, ds in docs.items()
            if ds or kb.count(c)}


# ---------------------------------------------------------------------- past generations
def manifest_docs(manifest_path: Path) -> list[KnowledgeDoc]:
    """Documents for one finished short: a summary plus one per shot.

    The manifest is the JSON the create_short flow writes next to the video. Used keys (others ignored):
    `plan` (the Plan as a dict; required), `request`, `id`, `video`/`output`, `scores` (shot id → score or
    a list of {shot_id, score}), `created`.
    """
    path = Path(manifest_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(f"manifest {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KnowledgeError(f"manifest {path} is not valid JSON: {e}") from None
    plan = data.get("plan") if isinstance(data, dict) else None
    if not isinstance(plan, dict) or not plan.get("shots"):
        raise KnowledgeError(f"manifest {path} has no 'plan' with shots; is it a finished short's manifest?")
    key = str(data.get("id") or hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16])
    scores = _scores(data.get("scores"))
    chars = sorted({c for s in plan["shots"] for c in s.get("characters", [])} | set(plan.get("characters", [])))
    base = {"title": str(plan.get("title", "")), "source": str(path), "doc_id": f"short:{key}", "kind": "short",
            "characters": chars, "video": str(data.get("video") or data.get("output") or "")}
    mean = sum(scores.values()) / len(scores) if scores else None
    summary = (f"Past short '{plan.get('title', '')}': {plan.get('logline', '')} Request: "
               f"{str(data.get('request', ''))[:400]}. {len(plan['shots'])} shots with "
               f"{', '.join(chars) or 'no characters'}"
               + (f"; mean quality score {mean:.2f}." if mean is not None else "."))
    docs = [KnowledgeDoc(id=f"short:{key}", text=summary, metadata={**base, "mean_score": mean})]
    for s in plan["shots"]:
        sid = s.get("id")
        line = (s.get("dialogue") or {}).get("line", "")
        text = (f"Shot {sid} of '{plan.get('title', '')}': {s.get('action', '')} ({s.get('camera', '')}, "
                f"{s.get('emotion', '')}, {s.get('location', '')}, {s.get('duration', '')} s)"
                + (f' Line: "{line}"' if line else ""))
        docs.append(KnowledgeDoc(id=f"short:{key}#shot{sid}", text=text,
                                 metadata={**base, "kind": "shot", "characters": s.get("characters", []),
                                           "shot_id": sid, "score": scores.get(int(sid)) if sid else None}))
    return docs


def _scores(raw: Any) -> dict[int, float]:
    out: dict[int, float] = {}
    if isinstance(raw, dict):
        for k, v in raw.items():
            if str(k).isdigit() and isinstance(v, int | float):
                out[int(k)] = float(v)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "shot_id" in item and isinstance(item.get("score"), int | float):
                out[int(item["shot_id"])] = float(item["score"])
    return out


def index_past_generation(manifest_path: Path | str, kb: KnowledgeBase | None = None) -> UpsertStats:
    """Index one finished short into `past_generations` (re-indexing the same manifest replaces its docs)."""
    kb = kb or KnowledgeBase.from_settings()
    docs = manifest_docs(Path(manifest_path))
    stats = kb.upsert("past_generations", [d.model_copy(update={"metadata": {**d.metadata,
                                                                              "origin": GENERATION_ORIGIN}})
                                           for d in docs])
    # Shots removed from a re-rendered short must not linger.
    prefix = docs[0].id
    stale = [i for i in kb.hashes("past_generations", where={"doc_id": prefix}) if i not in {d.id for d in docs}]
    stats.deleted = kb.delete("past_generations", stale)
    return stats
