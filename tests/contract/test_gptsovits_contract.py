"""CONTRACT test of the GPT-SoVITS client against a stand-in of `api_v2.py` (GPT-SoVITS cannot run here).

The stand-in (this file run as a script, below) mirrors api_v2's HTTP surface as read from the upstream
source: `POST /tts` with the `TTS_Request` body and its `check_params` rules (required text / text_lang /
ref_audio_path / prompt_lang, the v2 language list, media types, cut methods, streaming_mode values),
success = WAV bytes, failure = HTTP 400 JSON `{"message", "Exception"}`; `GET /set_gpt_weights` and
`GET /set_sovits_weights` with `weights_path` ("success" or 400 "change ... weight failed"). It speaks with
espeak-ng (voice chosen by the loaded SoVITS weights, rate by `speed_factor`) and logs every request as JSON
lines, so the test can check what the real client code sent. It is started by the studio's own managed-server
code (`GPTSoVITSServer.start`) from a fake checkout whose `api_v2.py` runs this file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

if __name__ != "__main__":
    import pytest

    pytestmark = pytest.mark.contract

# ============================================================================ the stand-in server
STANDIN_LANGUAGES = ["auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko"]
CUT_METHODS = ["cut0", "cut1", "cut2", "cut3", "cut4", "cut5"]

from pydantic import BaseModel  # noqa: E402


class TTS_Request(BaseModel):  # field names and defaults as in api_v2.py
    text: str = None
    text_lang: str = None
    ref_audio_path: str = None
    aux_ref_audio_paths: list = None
    prompt_lang: str = None
    prompt_text: str = ""
    top_k: int = 15
    top_p: float = 1
    temperature: float = 1
    text_split_method: str = "cut5"
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int = -1
    media_type: str = "wav"
    streaming_mode: bool | int = False
    parallel_infer: bool = True
    repetition_penalty: float = 1.35
    sample_steps: int = 32
    super_sampling: bool = False



def build_standin_app(log_path: str):
    import io
    import subprocess

    import numpy as np
    import soundfile as sf
    from fastapi import FastAPI, Response
    from fastapi.responses import JSONResponse

    app = FastAPI()
    state: dict = {"gpt": None, "sovits": None}

    def record(kind: str, data: dict) -> None:
        with open(log_path, "a") as f:
            f.write(json.dumps({"kind": kind, **data}) + "\n")

    def check_params(req: dict):
        def bad(msg: str):
            return JSONResponse(status_code=400, content={"message": msg})

        if req.get("ref_audio_path") in (None, ""):
            return bad("ref_audio_path is required")
        if req.get("text") in (None, ""):
            return bad("text is required")
        if req.get("text_lang") in (None, ""):
            return bad("text_lang is required")
        if req["text_lang"].lower() not in STANDIN_LANGUAGES:
            return bad(f"text_lang: {req['text_lang']} is not supported in version v2")
        if req.get("prompt_lang") in (None, ""):
            return bad("prompt_lang is required")
        if req["prompt_lang"].lower() not in STANDIN_LANGUAGES:
            return bad(f"prompt_lang: {req['prompt_lang']} is not supported in version v2")
        if req.get("media_type", "wav") not in ("wav", "raw", "ogg", "aac"):
            return bad(f"media_type: {req['media_type']} is not supported")
        if req.get("text_split_method", "cut5") not in CUT_METHODS:
            return bad(f"text_split_method:{req['text_split_method']} is not supported")
        return None

    @app.post("/tts")
    async def tts_post(request: TTS_Request):
        req = request.model_dump()
        record("tts", {**req, "loaded_gpt": state["gpt"], "loaded_sovits": state["sovits"]})
        check = check_params(req)
        if check is not None:
            return check
        if req["streaming_mode"] not in (0, 1, 2, 3, True, False):
            return JSONResponse(status_code=400, content={"message": "the value of streaming_mode must be 0-3"})
        text = req["text"]
        if "[[crash]]" in text:
            return Response(status_code=500, content=b"Internal Server Error")
        if "[[empty]]" in text:
            return Response(b"", media_type="audio/wav")
        if "[[garbage]]" in text:
            return Response(b"\x00\x01 definitely not audio", media_type="audio/wav")
        if not os.path.isfile(req["ref_audio_path"]):
            return JSONResponse(status_code=400, content={"message": "tts failed", "Exception":
                                f"Error opening {req['ref_audio_path']!r}: System error."})
        voice = "en-us+f3" if state["sovits"] and "giulia" in state["sovits"] else "en-us+m3"
        wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(170 * req["speed_factor"])), "--stdout",
                              "--", text], capture_output=True, check=True).stdout
        y, sr = sf.read(io.BytesIO(wav), dtype="float32")
        n = int(len(y) * 32000 / sr)  # the v2 pipeline answers at 32 kHz
        y32 = np.interp(np.linspace(0, len(y) - 1, n), np.arange(len(y)), y).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, y32, 32000, format="wav")
        return Response(buf.getvalue(), media_type="audio/wav")

    def set_weights(kind: str, weights_path: str | None):
        record(f"set_{kind}_weights", {"weights_path": weights_path})
        if weights_path in ("", None):
            return JSONResponse(status_code=400, content={"message": f"{kind} weight path is required"})
        if not os.path.isfile(weights_path):
            return JSONResponse(status_code=400, content={"message": f"change {kind} weight failed",
                                                          "Exception": f"No such file: {weights_path}"})
        state[kind] = weights_path
        return JSONResponse(status_code=200, content={"message": "success"})

    @app.get("/set_gpt_weights")
    async def set_gpt_weights(weights_path: str = None):
        return set_weights("gpt", weights_path)

    @app.get("/set_sovits_weights")
    async def set_sovits_weights(weights_path: str = None):
        return set_weights("sovits", weights_path)

    return app


def serve_standin() -> None:
    import argparse

    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("-a", "--bind_addr", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=9880)
    ap.add_argument("-c", "--tts_config", default="GPT_SoVITS/configs/tts_infer.yaml")
    args = ap.parse_args()
    if not os.path.isfile(args.tts_config):  # the real server dies without its config too
        sys.exit(f"tts config not found: {args.tts_config}")
    uvicorn.run(build_standin_app(os.environ["STANDIN_LOG"]), host=args.bind_addr, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    serve_standin()
    sys.exit(0)

# ============================================================================ the tests
import subprocess  # noqa: E402

import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from support.env import free_port  # noqa: E402
from support.voice_setup import fresh_settings, make_config_dir  # noqa: E402, F401

from studio.configs.settings import get_settings  # noqa: E402


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """A fake GPT-SoVITS checkout whose api_v2.py runs the stand-in, configs pointing at it, refs + weights."""
    checkout = tmp_path / "GPT-SoVITS"
    (checkout / "GPT_SoVITS" / "configs").mkdir(parents=True)
    (checkout / "GPT_SoVITS" / "configs" / "tts_infer.yaml").write_text("version: v2\n")
    (checkout / "api_v2.py").write_text(
        "import runpy, sys\n"
        f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')\n")
    log = tmp_path / "standin.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    assets = tmp_path / "voices"
    assets.mkdir()
    refs, weights = {}, {}
    for char in ("luca", "giulia"):
        for emotion in ("neutral", "excited"):
            wav = assets / f"{char}_{emotion}.wav"
            subprocess.run(["espeak-ng", "-w", str(wav), f"{char} reference {emotion}"], check=True)
            refs.setdefault(char, {})[emotion] = {"audio": str(wav), "text": f"{char} reference {emotion}",
                                                  "language": "en"}
        for kind, ext in (("gpt", "ckpt"), ("sovits", "pth")):
            p = assets / f"{char}-{kind}.{ext}"
            p.write_bytes(b"weights")
            weights.setdefault(char, {})[f"{kind}_weights"] = str(p)
    port = free_port()
    voices = {"voices": {c: {"gpt_sovits": {**weights[c], "references": refs[c]}} for c in refs}}
    tts = {"backends": {"gpt_sovits": {"port": port, "checkout": str(checkout), "python": sys.executable,
                                       "start_timeout_s": 60, "request_timeout_s": 30, "park": "keep",
                                       "language_map": {"it": "en"}}}}
    make_config_dir(tmp_path, monkeypatch, tts=tts, voices=voices)
    from studio.resources.voice.gptsovits import GPTSoVITSServer

    server = GPTSoVITSServer()
    yield {"server": server, "log": log, "refs": refs, "weights": weights, "port": port}
    server.stop()
    get_settings.cache_clear()


def test_contract_lines_send_api_v2_fields_and_switch_weights_once_per_character(standin, tmp_path):
    from studio.resources.voice.config import load_character_voices, load_tts_config
    from studio.resources.voice.line import synthesize_line_file
    from studio.resources.voice.select import prosody_for

    server = standin["server"]
    lines = [("luca", "excited", "The sea! It's so big!"), ("luca", "neutral", "Let's go home."),
             ("giulia", "excited", "Andiamo, we can win this!")]
    results = [synthesize_line_file(c, t, e, 0.8, tmp_path / f"l{i}.wav", profile="gpu")
               for i, (c, e, t) in enumerate(lines)]
    assert server.pid() is not None and server.healthy(), "the managed server was started and kept (park: keep)"
    assert Path(server.log_file).exists() and server.pid_file.exists()
    for r in results:
        assert r.backend == "gpt-sovits" and r.fallback_from is None
        y, sr = sf.read(r.path)
        assert sr == 24000 and len(y) / sr > 0.5
    events = _log(standin["log"])
    switches = [(e["kind"], e["weights_path"]) for e in events if e["kind"].startswith("set_")]
    w = standin["weights"]
    # luca's weights once, nothing for luca's second line, then giulia's
    assert switches == [("set_gpt_weights", w["luca"]["gpt_weights"]),
                        ("set_sovits_weights", w["luca"]["sovits_weights"]),
                        ("set_gpt_weights", w["giulia"]["gpt_weights"]),
                        ("set_sovits_weights", w["giulia"]["sovits_weights"])]
    tts_calls = [e for e in events if e["kind"] == "tts"]
    assert len(tts_calls) == 3 + 1  # "The sea! / It's so big!" is two sentences
    first = tts_calls[0]
    assert first["text"] == "The sea!" and first["text_lang"] == "en" and first["prompt_lang"] == "en"
    assert first["ref_audio_path"] == standin["refs"]["luca"]["excited"]["audio"]  # the emotion's clip
    assert first["prompt_text"] == "luca reference excited"
    assert first["media_type"] == "wav" and first["streaming_mode"] is False
    assert first["text_split_method"] == "cut5" and first["top_k"] == 15 and isinstance(first["seed"], int)
    expected_speed = prosody_for("excited", 0.8, load_tts_config()).tempo * load_character_voices().voices["luca"].speed
    assert first["speed_factor"] == pytest.approx(expected_speed, abs=1e-3)
    assert first["loaded_sovits"] == w["luca"]["sovits_weights"]  # weights switched before synthesis
    neutral = tts_calls[2]
    assert neutral["ref_audio_path"] == standin["refs"]["luca"]["neutral"]["audio"]
    assert neutral["speed_factor"] < first["speed_factor"]
    assert tts_calls[3]["loaded_sovits"] == w["giulia"]["sovits_weights"]
    from studio.tasks.voice import line_recipe, voice_task_for

    recipe = line_recipe("luca", "Not stored yet.", "neutral", 0.5, profile="gpu")
    assert recipe.backend == "gpt-sovits" and "gpu-heavy" in voice_task_for(recipe).tags  # heavy, not cached
    pid = server.pid()
    assert server.stop() and server.pid() is None and not server.healthy()
    from studio.resources.runtime.servers import pid_alive

    assert not pid_alive(pid)


def test_contract_italian_is_mapped_and_unknown_language_refused_before_any_request(standin, tmp_path):
    from studio.resources.voice.base import UnsupportedLanguageError
    from studio.resources.voice.line import synthesize_line_file

    synthesize_line_file("luca", "Ciao, andiamo al mare.", "neutral", 0.5, tmp_path / "it.wav", profile="gpu",
                         language="it")
    call = [e for e in _log(standin["log"]) if e["kind"] == "tts"][-1]
    assert call["text_lang"] == "en" and call["text"] == "Ciao, andiamo al mare."
    n_before = len(_log(standin["log"]))
    with pytest.raises(UnsupportedLanguageError, match="not supported by voice backend 'gpt-sovits'"):
        synthesize_line_file("luca", "Hallo.", "neutral", 0.5, tmp_path / "de.wav", profile="gpu", language="de")
    assert len(_log(standin["log"])) == n_before and not (tmp_path / "de.wav").exists()


def test_contract_client_errors_are_clear(standin, tmp_path):
    from studio.resources.voice.base import SynthesisError
    from studio.resources.voice.gptsovits import (
        GPTSoVITSClient,
        GPTSoVITSRequestError,
        GPTSoVITSServerError,
        GPTSoVITSUnavailableError,
    )
    from studio.resources.voice.line import synthesize_line_file

    server = standin["server"]
    server.start()
    client = server.client
    ref = standin["refs"]["luca"]["neutral"]
    base = {"text": "hello", "text_lang": "en", "ref_audio_path": ref["audio"], "prompt_text": ref["text"],
            "prompt_lang": "en", "media_type": "wav", "streaming_mode": False}
    y, sr = client.tts(base)
    assert sr == 32000 and len(y) > 1000
    # server down
    with pytest.raises(GPTSoVITSUnavailableError, match="no GPT-SoVITS server answers"):
        GPTSoVITSClient(f"http://127.0.0.1:{free_port()}", 5).tts(base)
    # 4xx, with the server's own message
    with pytest.raises(GPTSoVITSRequestError, match="text_lang: xx is not supported"):
        client.tts({**base, "text_lang": "xx"})
    with pytest.raises(GPTSoVITSRequestError, match="HTTP 400.*change gpt weight failed"):
        client.set_gpt_weights(str(tmp_path / "missing.ckpt"))
    with pytest.raises(GPTSoVITSRequestError, match="tts failed"):
        client.tts({**base, "ref_audio_path": str(tmp_path / "nope.wav")})
    # 5xx
    with pytest.raises(GPTSoVITSServerError, match="HTTP 500"):
        client.tts({**base, "text": "boom [[crash]]"})
    # 200 with no audio / not audio
    with pytest.raises(GPTSoVITSServerError, match="no audio"):
        client.tts({**base, "text": "[[empty]]"})
    with pytest.raises(GPTSoVITSServerError, match="not decodable audio"):
        client.tts({**base, "text": "[[garbage]]"})
    # through the line pipeline: the error surfaces, nothing is written
    out = tmp_path / "never.wav"
    with pytest.raises(SynthesisError, match="no audio"):
        synthesize_line_file("luca", "Hi [[empty]]", "neutral", 0.5, out, profile="gpu")
    assert not out.exists() and not (tmp_path / "never.timing.json").exists()


def test_gpu_profile_falls_back_to_piper_when_gptsovits_cannot_run(tmp_path, monkeypatch):
    make_config_dir(tmp_path, monkeypatch, tts={"backends": {"gpt_sovits": {
        "port": free_port(), "checkout": str(tmp_path / "no-checkout")}}})
    from studio.resources.voice.line import plan_line

    spec = plan_line("luca", "Hello.", "happy", 0.5, profile="gpu")
    assert spec.backend == "piper" and spec.fallback_from == "gpt-sovits"
    get_settings.cache_clear()


def test_contract_park_stop_frees_the_server_between_heavy_holds(standin, tmp_path):
    """As a heavy model the server is loaded inside the residency hold and stopped when it parks, and every
    step is in the residency record."""
    import yaml

    from studio.resources.runtime.residency import read_residency_log
    from studio.resources.voice.gptsovits import GPTSoVITSServer
    from studio.resources.voice.line import synthesize_line_file

    cfg_file = Path(os.environ["STUDIO_CONFIG_DIR"]) / "tts_config.yaml"
    tts = yaml.safe_load(cfg_file.read_text())
    tts["backends"]["gpt_sovits"]["park"] = "stop"
    cfg_file.write_text(yaml.safe_dump(tts))
    server = GPTSoVITSServer()
    for i in range(2):
        res = synthesize_line_file("giulia", "Pronti, partenza, via!", "excited", 1.0, tmp_path / f"p{i}.wav",
                                   profile="gpu")
        assert res.backend == "gpt-sovits" and server.pid() is None and not server.healthy()
    url = server.cfg.url()
    events = [r["event"] for r in read_residency_log() if r["model"].endswith(url) and r["pid"] == os.getpid()]
    assert events == ["load", "park", "activate", "park"]
    switches = [e["kind"] for e in _log(standin["log"]) if e["kind"].startswith("set_")]
    assert switches == ["set_gpt_weights", "set_sovits_weights"] * 2  # a restarted server gets its weights again
