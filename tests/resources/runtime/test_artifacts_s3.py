"""The artifact store and Prefect results on S3: a real moto S3 server on 127.0.0.1, started by the test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio.resources.runtime.artifacts import ArtifactStore, Recipe

BUCKET = "studio-test"


@pytest.fixture(scope="module")
def moto_s3():
    from support.s3 import start_moto

    moto = start_moto(BUCKET)
    yield moto.url
    moto.stop()


def _s3_env(url: str, prefix: str) -> dict[str, str]:
    return {"STUDIO_STORE__URI": f"s3://{BUCKET}/{prefix}", "STUDIO_STORE__S3_ENDPOINT_URL": url,
            "STUDIO_STORE__S3_KEY": "testing", "STUDIO_STORE__S3_SECRET": "testing",
            "STUDIO_STORE__S3_REGION": "us-east-1"}


def _keys(url: str, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def test_artifact_store_roundtrip_and_corruption_on_s3(moto_s3, tmp_path):
    opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": moto_s3}}
    store = ArtifactStore(f"s3://{BUCKET}/unit", opts, cache_dir=tmp_path / "cache")
    r = Recipe(stage="unit", backend="t", params={"n": 1})
    assert store.lookup(r) is None
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(4096))
    ref = store.put_file(r, src, "application/octet-stream")
    assert ref.uri.startswith(f"s3://{BUCKET}/unit/unit/")
    assert store.lookup(r) == ref
    assert store.local_path(ref).read_bytes() == src.read_bytes()
    # Overwrite the data object with other bytes of the same size: the hash check rejects it.
    store.fs.pipe(ref.uri, os.urandom(4096))
    fresh = ArtifactStore(f"s3://{BUCKET}/unit", opts, cache_dir=tmp_path / "cache2")
    assert fresh.lookup(r) is None


def test_s3_artifacts_reach_the_browser_by_presigned_url(moto_s3, tmp_path):
    """On an S3 store the UI's pictures and the playable short are presigned URLs: fetched with no credentials
    they give the artifact's bytes with its media type, and a range request (the video player's seek) works."""
    import urllib.request

    from studio.tasks.short_report import artifact_url

    opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": moto_s3}}
    store = ArtifactStore(f"s3://{BUCKET}/signed", opts, cache_dir=tmp_path / "cache")
    src = tmp_path / "short.mp4"
    src.write_bytes(os.urandom(20_000))
    ref = store.put_file(Recipe(stage="cut", backend="t", params={"n": 2}), src, "video/mp4")
    url = artifact_url(store, ref)
    assert url and url.startswith(moto_s3) and "Signature" in url and "testing" not in url.split("?")[0]
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == src.read_bytes() and r.headers["Content-Type"] == "video/mp4"
    req = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 206 and r.read() == src.read_bytes()[100:200]


def test_flow_artifacts_live_on_s3_and_prefect_writes_no_result_records(prefect_server, moto_s3, tmp_path):
    env = {**os.environ, **_s3_env(moto_s3, "flow"), "STUDIO_DEMO_EXEC_LOG": str(tmp_path / "exec.log")}
    cmd = [sys.executable, "-m", "studio.cli", "demo", "--label", "s3", "--tasks", "2", "--no-start-server"]
    for _ in range(2):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    keys = _keys(moto_s3, "flow/")
    artifacts = [k for k in keys if k.startswith("flow/demo/") and k.endswith(".npy")]
    sidecars = [k for k in keys if k.startswith("flow/demo/") and k.endswith(".json")]
    assert len(artifacts) == 2 and len(sidecars) == 2, keys
    # No Prefect result records on shared storage (they could name `pickle` as their serializer)...
    assert not [k for k in keys if "prefect-results" in k], keys
    # ...and still the second run was served from the S3 store: each step executed once.
    assert len((tmp_path / "exec.log").read_text().splitlines()) == 2
