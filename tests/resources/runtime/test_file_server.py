"""The read-only file server: byte ranges, media types, and no way out of its folders (real HTTP on loopback)."""

from __future__ import annotations

import http.client
import os
import urllib.parse

import pytest
from support.record import serve_in_thread

from studio.resources.runtime.file_server import file_url, parse_range, served_roots


@pytest.fixture
def served(tmp_path):
    store, shorts, secret = tmp_path / "store", tmp_path / "shorts", tmp_path / "secret"
    for d in (store / "segment" / "ab", shorts / "one", secret):
        d.mkdir(parents=True)
    (store / "segment" / "ab" / "clip.mp4").write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    (shorts / "one" / "storyboard.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    (secret / "key.txt").write_text("do not serve")
    os.symlink(secret / "key.txt", store / "segment" / "ab" / "link.txt")
    server = serve_in_thread({"store": store, "shorts": shorts})
    yield server.server_address[1], tmp_path
    server.shutdown()
    server.server_close()


def _get(port: int, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest(method, path, skip_accept_encoding=True)  # raw path: no client-side normalisation
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_whole_file_and_ranges(served):
    port, root = served
    data = (root / "store" / "segment" / "ab" / "clip.mp4").read_bytes()
    status, h, body = _get(port, "/files/store/segment/ab/clip.mp4")
    assert status == 200 and body == data and h["content-type"] == "video/mp4" and h["accept-ranges"] == "bytes"
    status, h, body = _get(port, "/files/store/segment/ab/clip.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200] and h["content-range"] == f"bytes 100-199/{len(data)}"
    status, h, body = _get(port, "/files/store/segment/ab/clip.mp4", headers={"Range": "bytes=10000-"})
    assert status == 206 and body == data[10000:]
    status, h, body = _get(port, "/files/store/segment/ab/clip.mp4", headers={"Range": "bytes=-16"})
    assert status == 206 and body == data[-16:]
    status, h, _ = _get(port, "/files/store/segment/ab/clip.mp4", headers={"Range": "bytes=999999-"})
    assert status == 416 and h["content-range"] == f"bytes */{len(data)}"
    status, h, body = _get(port, "/files/store/segment/ab/clip.mp4", method="HEAD")
    assert status == 200 and body == b"" and int(h["content-length"]) == len(data)
    status, h, body = _get(port, "/files/shorts/one/storyboard.png")
    assert status == 200 and h["content-type"] == "image/png" and body.startswith(b"\x89PNG")


@pytest.mark.parametrize("path", [
    "/files/store/../secret/key.txt",
    "/files/store/%2e%2e/secret/key.txt",
    "/files/store/segment/..%2f..%2f..%2fsecret/key.txt",
    "/files/store//etc/passwd",
    "/files/store/%2fetc%2fpasswd",
    "/files/store/segment/ab/link.txt",  # a symlink that leads out of the store
    "/files/secret/key.txt",  # not a served root
    "/files/store/segment",  # a folder
    "/files/store/segment/ab/clip.mp4%00.png",
    "/etc/passwd",
    "/files/",
])
def test_no_path_escapes(served, path):
    port, _ = served
    status, _, body = _get(port, path)
    assert status == 404, (path, status)
    assert b"do not serve" not in body and b"root:" not in body


def test_read_only(served):
    port, _ = served
    for method in ("PUT", "DELETE", "POST"):
        status, _, _ = _get(port, "/files/store/segment/ab/clip.mp4", method=method)
        assert status == 405
    assert (served[1] / "store" / "segment" / "ab" / "clip.mp4").exists()


def test_parse_range_edges():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=0-1,4-5", 10) is None  # multi-range: the whole file
    assert parse_range("bytes=-0", 10) is False
    assert parse_range("bytes=9-3", 10) is False


def test_file_url_maps_only_served_folders(tmp_path, monkeypatch):
    from studio.configs.settings import get_settings

    monkeypatch.setenv("STUDIO_STORE__URI", str(tmp_path / "store"))
    monkeypatch.setenv("STUDIO_FILES__PORT", "4999")
    get_settings.cache_clear()
    try:
        roots = served_roots()
        assert roots["store"] == (tmp_path / "store").resolve()
        url = file_url(tmp_path / "store" / "cut" / "a b.mp4")
        assert url == "http://127.0.0.1:4999/files/store/cut/" + urllib.parse.quote("a b.mp4")
        assert file_url(tmp_path / "elsewhere.mp4") is None
        assert file_url(tmp_path / "store" / ".." / "x.mp4") is None
    finally:
        get_settings.cache_clear()


def test_background_server_starts_serves_and_stops(tmp_path, monkeypatch):
    """What `studio server start` / `stop` do: a process of its own on the configured loopback port."""
    from support.env import free_port

    from studio.configs.settings import get_settings
    from studio.resources.runtime.file_server import is_serving, start_file_server, stop_file_server

    port = free_port()
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_FILES__PORT", str(port))
    get_settings.cache_clear()
    try:
        (tmp_path / "home" / "shorts" / "a").mkdir(parents=True)
        (tmp_path / "home" / "shorts" / "a" / "subtitles.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
        assert start_file_server() == f"http://127.0.0.1:{port}"
        status, h, body = _get(port, "/files/shorts/a/subtitles.srt")
        assert status == 200 and body.endswith(b"hi\n") and h["content-type"].startswith("text/plain")
        assert start_file_server() == f"http://127.0.0.1:{port}"  # already serving: no second process
        assert stop_file_server() and not is_serving()
        monkeypatch.setenv("STUDIO_FILES__ENABLED", "false")
        get_settings.cache_clear()
        assert start_file_server() is None and file_url(tmp_path / "home" / "shorts" / "a" / "x.png") is None
    finally:
        stop_file_server()
        get_settings.cache_clear()
