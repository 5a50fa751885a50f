"""Retrieval over the real knowledge pack with the real all-MiniLM-L6-v2 embedder (loaded once per session):
known questions find the right documents, indexing is incremental by content hash, removed documents are
deleted, filters are typed, finished shorts become searchable, and the store also works on S3 (moto)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from studio import knowledge_pack_dir
from studio.resources.knowledge.pack import index_pack, index_past_generation, load_pack
from studio.resources.knowledge.store import KnowledgeBase, KnowledgeDoc, KnowledgeError, build_filter


@pytest.fixture(scope="session")
def embedder():
    from studio.resources.registry import load_backend

    emb = load_backend("embedder", "preview")
    assert emb.dim == 384
    return emb


@pytest.fixture(scope="session")
def shipped_kb(embedder, tmp_path_factory) -> KnowledgeBase:
    kb = KnowledgeBase(str(tmp_path_factory.mktemp("kb") / "knowledge.lance"), embedder)
    index_pack(kb, knowledge_pack_dir())
    return kb


@pytest.fixture
def pack(tmp_path) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(knowledge_pack_dir(), dst, ignore=shutil.ignore_patterns("refs", "*.png", "*.jpg"))
    return dst


@pytest.mark.parametrize("question, expected", [
    ("Who throws nuts and fruit at the bunny from the tree?", {"bbb/story.yaml#beat-bullies",
                                                              "bbb/characters/frank.md#personality"}),
    ("Where does Alberto live?", {"luca/places.md#isola-del-mare", "luca/characters/alberto.md#personality"}),
    ("Which race does Giulia want to win?", {"luca/characters/giulia.md#personality"}),
    ("How long should a comic reaction shot be held?", {"bbb/style_guide.md#camera-and-pacing"}),
    ("the chubby chinchilla who laughs a beat too late", {"bbb/characters/gimera.md#personality",
                                                          "bbb/characters/gimera.md#how-he-speaks"}),
    ("what music and sound effects fit the Portorosso shorts", {"luca/style_guide.md#sound-and-music"}),
])
def test_known_questions_retrieve_the_right_documents(shipped_kb, question, expected):
    hits = shipped_kb.search(question, k=3)
    assert expected & {h.id for h in hits}, [(h.id, h.score) for h in hits]
    assert hits == sorted(hits, key=lambda h: -h.score) and all(-1 <= h.score <= 1 for h in hits)


def test_filters_by_collection_and_character(shipped_kb):
    hits = shipped_kb.search("how does he talk", k=5, where={"character": "rinky"})
    assert hits and all("rinky" in h.metadata["characters"] for h in hits)
    style = shipped_kb.search("camera", collection="style_guide", k=5)
    assert style and {h.collection for h in style} == {"style_guide"}
    assert shipped_kb.search("anything", where={"character": "nobody-like-this"}) == []


def test_filters_are_typed_and_quoted():
    assert build_filter({"character": "x' OR 1=1 --"}) == "(array_has(characters, 'x'' OR 1=1 --'))"
    assert build_filter({"kind": ["style", "places"]}) == "kind IN ('style', 'places')"
    with pytest.raises(KnowledgeError, match="cannot filter on 'vector'"):
        build_filter({"vector": "1"})
    with pytest.raises(KnowledgeError, match="strings or numbers"):
        build_filter({"kind": {"$ne": 1}})


def test_reindexing_is_incremental_by_content_hash(embedder, pack, tmp_path):
    kb = KnowledgeBase(str(tmp_path / "k.lance"), embedder)
    first = index_pack(kb, pack)
    n_chunks = sum(len(d) for d in load_pack(pack).values())
    assert sum(s.embedded for s in first.values()) == n_chunks > 40

    before = embedder.texts_embedded
    again = index_pack(kb, pack)
    assert sum(s.embedded for s in again.values()) == 0 and embedder.texts_embedded == before
    assert sum(s.unchanged for s in again.values()) == n_chunks

    doc = pack / "bbb/characters/rinky.md"
    doc.write_text(doc.read_text().replace("nibbling", "forever clutching"))
    edited = index_pack(kb, pack)
    assert edited["character_info"].ids_embedded == ["bbb/characters/rinky.md#appearance"]
    assert embedder.texts_embedded == before + 1
    assert "forever clutching" in kb.search("red squirrel holding an acorn", k=1)[0].text

    (pack / "bbb/characters/gimera.md").unlink()
    removed = index_pack(kb, pack)
    assert removed["character_info"].deleted == 4 and removed["character_info"].embedded == 0
    assert not [h for h in kb.search("chubby chinchilla", k=10) if h.id.startswith("bbb/characters/gimera")]


def test_upsert_rejects_unknown_collections_and_duplicates(embedder, tmp_path):
    kb = KnowledgeBase(str(tmp_path / "k.lance"), embedder)
    with pytest.raises(KnowledgeError, match="unknown collection"):
        kb.upsert("secrets", [KnowledgeDoc(id="a", text="x")])
    with pytest.raises(KnowledgeError, match="duplicate"):
        kb.upsert("style_guide", [KnowledgeDoc(id="a", text="x"), KnowledgeDoc(id="a", text="y")])
    with pytest.raises(KnowledgeError, match="empty search"):
        kb.search("  ")


def test_finished_shorts_are_indexed_from_their_manifest(embedder, tmp_path):
    kb = KnowledgeBase(str(tmp_path / "k.lance"), embedder)
    plan = {"title": "Gelato Trouble", "logline": "Luca and Alberto fight over the last gelato.",
            "characters": ["luca", "alberto"], "shots": [
                {"id": 1, "characters": ["luca"], "action": "Luca licks a huge pistachio gelato", "duration": 3},
                {"id": 2, "characters": ["alberto"], "action": "Alberto steals the cone and runs", "duration": 3,
                 "dialogue": {"character": "alberto", "line": "Silenzio, Bruno!"}}]}
    manifest = tmp_path / "short" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"id": "gelato-1", "request": "luca and alberto and a gelato", "plan": plan,
                                    "video": "short.mp4", "scores": {"1": 0.8, "2": 0.4}}))
    stats = index_past_generation(manifest, kb)
    assert stats.embedded == 3
    hit = kb.search("who stole the ice cream cone?", collection="past_generations", k=1)[0]
    assert hit.id == "short:gelato-1#shot2" and hit.metadata["score"] == 0.4
    plan["shots"] = plan["shots"][:1]
    manifest.write_text(json.dumps({"id": "gelato-1", "plan": plan}))
    again = index_past_generation(manifest, kb)
    assert again.deleted == 1 and kb.count("past_generations") == 2
    with pytest.raises(KnowledgeError, match="no 'plan'"):
        manifest.write_text("{}")
        index_past_generation(manifest, kb)


def test_knowledge_base_on_s3(embedder, tmp_path, monkeypatch):
    """The same code against S3 (moto on 127.0.0.1), configured through the store settings."""
    from support.s3 import start_moto

    moto = start_moto("studio-kb")
    try:
        from studio.configs.settings import get_settings

        for k, v in moto.env("s3://studio-kb/store").items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        kb = KnowledgeBase.from_settings(embedder=embedder)
        assert kb.uri == "s3://studio-kb/store/knowledge.lance"
        kb.upsert("style_guide", [KnowledgeDoc(id="s1", text="Wide shots of the harbour at sunset.",
                                               metadata={"kind": "style"})])
        assert kb.upsert("style_guide", [KnowledgeDoc(id="s1", text="Wide shots of the harbour at sunset.",
                                                      metadata={"kind": "style"})]).embedded == 0
        assert kb.search("harbour sunset", k=1)[0].id == "s1"
    finally:
        moto.stop()
        get_settings.cache_clear()


def test_index_knowledge_flow(prefect_server, pack, tmp_path, monkeypatch):
    """The Prefect flow indexes the pack and a manifest folder; a rerun embeds nothing."""
    from studio.configs.settings import get_settings
    from studio.flows.index_knowledge import index_knowledge

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_PREFECT__API_URL", os.environ["PREFECT_API_URL"])
    get_settings.cache_clear()
    try:
        shorts = tmp_path / "shorts" / "a"
        shorts.mkdir(parents=True)
        (shorts / "manifest.json").write_text(json.dumps({"id": "a", "plan": {"title": "T", "shots": [
            {"id": 1, "action": "Giulia rides her bike down the hill", "characters": ["giulia"]}]}}))
        first = index_knowledge(pack_dir=str(pack), manifests_dir=str(tmp_path / "shorts"))
        assert first["pack"]["character_info"]["embedded"] > 20
        assert first["past_generations"][str(shorts / "manifest.json")]["embedded"] == 2
        second = index_knowledge(pack_dir=str(pack))
        assert all(s["embedded"] == 0 for s in second["pack"].values())
        assert second["ann_indexes_built"] == []  # 49 chunks: exact search, no index
        assert (tmp_path / "home" / "knowledge.lance").is_dir()
    finally:
        get_settings.cache_clear()


def test_cli_knowledge_index_and_search(embedder, pack, tmp_path, monkeypatch):
    """`studio knowledge index|search` (in-process: the embedder model is already loaded in this session)."""
    from typer.testing import CliRunner

    from studio.cli import app
    from studio.configs.settings import get_settings

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["knowledge", "index", "--pack", str(pack)])
        assert first.exit_code == 0, first.output
        assert "character_info    embedded   28" in first.output
        again = runner.invoke(app, ["knowledge", "index", "--pack", str(pack)])
        assert "embedded    0  unchanged   28" in again.output
        found = runner.invoke(app, ["knowledge", "search", "who lives in a tower on an island", "--json", "-k", "2"])
        assert found.exit_code == 0 and json.loads(found.stdout)[0]["id"].startswith("luca/")
        bad = runner.invoke(app, ["knowledge", "search", "x", "--collection", "secrets"])
        assert bad.exit_code != 0 and "unknown collection 'secrets'" in str(bad.exception)
    finally:
        get_settings.cache_clear()
