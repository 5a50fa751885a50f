"""Nothing on shared storage can run code or escape the cache; the studio talks only to its own server.

Real parts: a moto S3 server on 127.0.0.1, the session's Prefect server, `studio` subprocesses.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from support.env import free_port
from support.s3 import start_moto

from studio.configs.settings import get_settings
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, StoreError, StoreUnavailableError

STUDIO = [sys.executable, "-m", "studio.cli"]
BUCKET = "safety"


@pytest.fixture(scope="module")
def moto():
    m = start_moto(BUCKET)
    yield m
    m.stop()


class _Boom:
    """Unpickling this creates the marker folder: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _pickle_record(marker: Path, key: str) -> bytes:
    from prefect.results import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer

    meta = ResultRecordMetadata(storage_key=key, serializer=PickleSerializer())
    return ResultRecord(metadata=meta, result=_Boom(marker)).serialize()


def _demo(env: dict, label: str, n: int = 2) -> subprocess.CompletedProcess:
    cmd = [*STUDIO, "demo", "--label", label, "--tasks", str(n), "--no-start-server"]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_planted_pickle_records_execute_nothing(prefect_server, moto, tmp_path):
    marker = tmp_path / "code-ran"
    # The threat is real: Prefect unpickles a record that names `pickle`, whatever the task asked for.
    from prefect.results import ResultRecord

    ResultRecord.deserialize(_pickle_record(tmp_path / "proof", "k"))
    assert (tmp_path / "proof").exists()

    exec_log = tmp_path / "exec.log"
    env = {**moto.env(f"s3://{BUCKET}/pickle"), "STUDIO_DEMO_EXEC_LOG": str(exec_log)}
    r = _demo(env, "pickle")
    assert r.returncode == 0, r.stdout + r.stderr
    keys = moto.keys(BUCKET, "pickle/")
    assert not [k for k in keys if "prefect-results" in k], "Prefect wrote result records to the shared bucket"
    # Plant a pickle record over every sidecar, and where result records used to live.
    s3 = moto.client()
    sidecars = [k for k in keys if k.endswith(".json")]
    assert len(sidecars) == 2
    for k in sidecars:
        s3.put_object(Bucket=BUCKET, Key=k, Body=_pickle_record(marker, k))
        name = k.rsplit("/", 1)[1].removesuffix(".json")
        s3.put_object(Bucket=BUCKET, Key=f"pickle/prefect-results/demo-{name[:40]}", Body=_pickle_record(marker, k))
    r = _demo(env, "pickle")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not marker.exists(), "a planted record was unpickled"
    # The tampered sidecars were ignored: both steps ran again and committed valid sidecars.
    assert len(exec_log.read_text().splitlines()) == 4
    for k in sidecars:
        json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())["sha256"]


def test_crafted_sidecars_write_nothing_outside_the_cache(moto, tmp_path):
    cache = tmp_path / "cache"
    store = ArtifactStore(f"s3://{BUCKET}/crafted", moto.options(), cache_dir=cache)
    r = Recipe(stage="unit", backend="t", params={"n": 1})
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(2048))
    good = store.put_file(r, src, "application/octet-stream")
    side_key = store.sidecar_path(r).removeprefix(f"s3://{BUCKET}/")
    base = store.sidecar(good)
    evil_uri = f"s3://{BUCKET}/crafted/elsewhere/payload.sh"
    store.fs.pipe(evil_uri, src.read_bytes())
    crafted = [
        {"sha256": "../../../evil"},  # names the local file
        {"uri": evil_uri},  # data outside the studio's layout
        {"uri": good.uri.rsplit(".", 1)[0] + "/../../../../evil"},  # a suffix that climbs
        {"stage": "../unit"},
        {"key": "0" * 64},  # another key than its own path
    ]
    for change in crafted:
        moto.client().put_object(Bucket=BUCKET, Key=side_key, Body=json.dumps({**base, **change}).encode())
        fresh = ArtifactStore(f"s3://{BUCKET}/crafted", moto.options(), cache_dir=cache)
        assert fresh.lookup(r) is None, change
        with pytest.raises((StoreError, ValueError)):
            fresh.local_path(ArtifactRef.model_validate({**good.model_dump(), **change}))
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and cache not in p.parents and p != src]
    assert outside == []
    assert all(len(p.stem) == 64 for p in cache.glob("*") if p.is_file())


def test_no_secret_readable_through_the_api(prefect_server, moto, tmp_path, monkeypatch):
    secret = "s3cret-" + os.urandom(6).hex()
    env = moto.env(f"s3://{BUCKET}/secrets", secret=secret)
    # A block with the secret, as older versions saved it: removed by the next run.
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    from prefect.filesystems import RemoteFileSystem

    from studio.resources.runtime.prefect_server import results_block_name

    RemoteFileSystem(basepath=f"s3://{BUCKET}/secrets/prefect-results",
                     settings={"secret": secret}).save(results_block_name(get_settings()), overwrite=True)
    r = _demo(env, "secrets", n=1)
    assert r.returncode == 0, r.stdout + r.stderr
    req = urllib.request.Request(f"{prefect_server}/block_documents/filter", method="POST",
                                 data=json.dumps({"include_secrets": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read().decode()
    assert secret not in body


class _FakeHealth(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


def test_a_foreign_health_server_is_refused(tmp_path):
    port = free_port()
    fake = http.server.ThreadingHTTPServer(("127.0.0.1", port), _FakeHealth)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_PREFECT__PORT": str(port),
               "STUDIO_FILES__ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        r = subprocess.run([*STUDIO, "server", "start"], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "not this studio's Prefect server" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "run" / "prefect-server.pid").exists()
    finally:
        fake.shutdown()


def _servers_on(port: int) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if "server" in (p.info["cmdline"] or []) and str(port) in (p.info["cmdline"] or [])
            and any("prefect" in a for a in p.info["cmdline"] or [])]


def test_two_concurrent_starts_leave_one_server(tmp_path):
    port = free_port()
    env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_PREFECT__PORT": str(port),
           "STUDIO_FILES__ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    procs = [subprocess.Popen([*STUDIO, "server", "start"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert len(_servers_on(port)) == 1, outs
        pid = int((tmp_path / "run" / "prefect-server.pid").read_text().split()[0])
        assert _servers_on(port) == [pid]
    finally:
        subprocess.run([*STUDIO, "server", "stop"], env=env, capture_output=True, timeout=120)
    deadline = time.monotonic() + 30
    while _servers_on(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _servers_on(port) == [], "`studio server stop` left a server running"


def test_a_stalled_s3_is_waited_for_not_re_rendered(tmp_path):
    moto = start_moto(BUCKET)
    try:
        store = ArtifactStore(f"s3://{BUCKET}/stall", moto.options(), cache_dir=tmp_path / "c1")
        r = Recipe(stage="unit", backend="t", params={"stall": 1})
        src = tmp_path / "a.bin"
        src.write_bytes(os.urandom(4096))
        ref = store.put_file(r, src, "application/octet-stream")
        made = []

        def remake(p: Path) -> None:
            made.append(p)
            p.write_bytes(b"re-rendered")

        fresh = ArtifactStore(f"s3://{BUCKET}/stall", moto.options(), cache_dir=tmp_path / "c2",
                              retry_s=40, timeout_s=1.0)
        os.kill(moto.proc.pid, signal.SIGSTOP)
        resume = threading.Timer(4.0, os.kill, (moto.proc.pid, signal.SIGCONT))
        resume.start()
        try:
            got = fresh.lookup_or_make(r, ".bin", "application/octet-stream", remake)
        finally:
            resume.join()
        assert got == ref and made == []
        # Stalled for longer than the retry window: a clear error, still no re-render.
        short = ArtifactStore(f"s3://{BUCKET}/stall", moto.options(), cache_dir=tmp_path / "c3",
                              retry_s=2, timeout_s=0.5)
        os.kill(moto.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailableError, match="did not answer"):
                short.lookup_or_make(r, ".bin", "application/octet-stream", remake)
        finally:
            os.kill(moto.proc.pid, signal.SIGCONT)
        assert made == []
    finally:
        moto.stop()
