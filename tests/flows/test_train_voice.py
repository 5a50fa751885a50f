"""train_voice: dataset validation, the written GPT-SoVITS config, the CPU stop, and — against a *fake*
GPT-SoVITS checkout whose scripts only record their inputs and write placeholder weight files — the step
orchestration (env vars, argv, merged outputs) and the registration of weights in character_voices.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.voice_setup import fresh_settings, make_config_dir  # noqa: F401


def _clip(path: Path, text: str, seconds_of_speech: int = 4) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), "-s", "120", text], check=True)
    return path


@pytest.fixture
def dataset(tmp_path):
    wavs = tmp_path / "ds" / "wavs"
    wavs.mkdir(parents=True)
    texts = ["I have never seen the sea this close before.", "Alberto says humans are dangerous.",
             "Tomorrow we ride the Vespa down to the harbour.", "Then we will see every town and star."]
    lines = [f"{_clip(wavs / f'luca_{i}.wav', t)}|luca|en|{t}" for i, t in enumerate(texts)]
    lst = tmp_path / "ds" / "luca.list"
    lst.write_text("\n".join(lines) + "\n")
    return lst


def test_validation_finds_every_problem(tmp_path, dataset):
    from studio.resources.voice.config import TrainingConfig
    from studio.resources.voice.training import validate_dataset

    cfg = TrainingConfig(min_minutes=0.05)
    ok = validate_dataset(dataset, cfg)
    assert ok.ok and ok.clips == 4 and ok.speakers == ["luca"] and ok.first_clip["text"].startswith("I have")
    good = dataset.read_text().splitlines()
    long_wav = tmp_path / "long.wav"
    subprocess.run(["espeak-ng", "-w", str(long_wav), "-s", "80", "word " * 40], check=True)
    bad = tmp_path / "bad.list"
    bad.write_text("\n".join([
        good[0],
        good[1].rsplit("|", 1)[0] + "|",                      # no text
        f"{tmp_path / 'missing.wav'}|luca|en|gone",              # missing file
        good[2].replace("|en|", "|it|"),                         # untrainable language
        good[3].replace("|luca|", "|alberto|"),                  # second speaker
        f"{long_wav}|luca|en|far too long",                      # > 15 s
        "just some text without fields",                         # malformed
    ]) + "\n")
    problems = "\n".join(validate_dataset(bad, cfg).problems)
    for expected in ["line 2: no text", "line 3: cannot read audio", "line 4: language 'it' cannot be trained",
                     "one speaker per training run, found alberto, luca", "line 6: long.wav lasts",
                     "line 7: expected path|speaker|language|text"]:
        assert expected in problems, problems
    assert "at least 1 min" in "\n".join(validate_dataset(dataset, TrainingConfig()).problems)


def test_cpu_profile_validates_writes_config_and_stops(prefect_server, tmp_path, monkeypatch, dataset):
    make_config_dir(tmp_path, monkeypatch, tts={"training": {"min_minutes": 0.05}})
    from studio.flows.train_voice import train_voice

    res = train_voice("luca", str(dataset), exp_name="luca-cpu", profile="preview")
    assert res["status"] == "stopped" and "training needs the gpu profile" in res["message"]
    assert "dataset OK: 4 clips" in res["message"] and res["weights"] is None
    work = Path(res["plan"]["work_dir"])
    plan = json.loads((work / "plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == ["1a-get-text", "1b-get-hubert-wav32k", "1c-get-semantic",
                                                  "s2-train-sovits", "s1-train-gpt"]
    env1a = plan["steps"][0]["env"]
    assert env1a["inp_text"] == str(dataset) and env1a["exp_name"] == "luca-cpu" and env1a["version"] == "v2"
    s2 = json.loads((work / "s2.json").read_text())
    assert s2["name"] == "luca-cpu" and s2["train"]["epochs"] == 8
    assert s2["save_weight_dir"].endswith("SoVITS_weights_v2")
    s1 = yaml.safe_load((work / "s1.yaml").read_text())
    assert s1["train"]["exp_name"] == "luca-cpu" and s1["train_phoneme_path"].endswith("2-name2text.txt")

    from studio.resources.voice.training import DatasetInvalidError

    empty = tmp_path / "empty.list"
    empty.write_text("")
    with pytest.raises(DatasetInvalidError, match="(?s)not trainable.*the list has no clips"):
        train_voice("luca", str(empty), profile="preview")


FAKE_STEP = r'''
import json, os, sys, pathlib
name = pathlib.Path(sys.argv[0]).name
log = pathlib.Path(os.environ["FAKE_LOG"])
with log.open("a") as f:
    f.write(json.dumps({"script": name, "argv": sys.argv[1:], "cwd": os.getcwd(),
                        "env": {k: os.environ.get(k) for k in ("inp_text", "inp_wav_dir", "exp_name", "opt_dir",
                                "bert_pretrained_dir", "cnhubert_base_dir", "pretrained_s2G", "s2config_path",
                                "i_part", "all_parts", "_CUDA_VISIBLE_DEVICES", "is_half", "version", "hz")}}) + "\n")
opt = os.environ.get("opt_dir")
if name == "1-get-text.py":
    os.makedirs(opt, exist_ok=True)
    lines = [ln for ln in open(os.environ["inp_text"]) if ln.strip()]
    rows = [ln.split("|")[0].rsplit("/", 1)[-1] + "\tphones\tword2ph\ttext" for ln in lines]
    open(f"{opt}/2-name2text-0.txt", "w").write("\n".join(rows) + "\n")
elif name == "3-get-semantic.py":
    open(f"{opt}/6-name2semantic-0.tsv", "w").write("luca_0.wav\t1 2 3\n")
elif name == "s2_train.py":
    cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
    os.makedirs(cfg["save_weight_dir"], exist_ok=True)
    open(f"{cfg['save_weight_dir']}/{cfg['name']}_e{cfg['train']['epochs']}_s40.pth", "wb").write(b"sovits")
elif name == "s1_train.py":
    import yaml
    cfg = yaml.safe_load(open(sys.argv[sys.argv.index("--config_file") + 1]))
    d = cfg["train"]["half_weights_save_dir"]
    os.makedirs(d, exist_ok=True)
    open(f"{d}/{cfg['train']['exp_name']}-e{cfg['train']['epochs']}.ckpt", "wb").write(b"gpt")
'''


def test_gpu_path_runs_the_steps_and_registers_weights(prefect_server, tmp_path, monkeypatch, dataset):
    checkout = tmp_path / "GPT-SoVITS"
    for rel in ("GPT_SoVITS/prepare_datasets/1-get-text.py", "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py",
                "GPT_SoVITS/prepare_datasets/3-get-semantic.py", "GPT_SoVITS/s2_train.py", "GPT_SoVITS/s1_train.py"):
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(FAKE_STEP)
    (checkout / "GPT_SoVITS/configs").mkdir(parents=True)
    s2_template = {"train": {"seed": 1234}, "data": {"max_wav_value": 32768.0}}
    (checkout / "GPT_SoVITS/configs/s2.json").write_text(json.dumps(s2_template))
    (checkout / "GPT_SoVITS/configs/s1longer-v2.yaml").write_text("train:\n  seed: 1234\nmodel:\n  vocab_size: 1025\n")
    fake_log = tmp_path / "steps.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(fake_log))
    folder = make_config_dir(tmp_path, monkeypatch, tts={
        "training": {"min_minutes": 0.05},
        "backends": {"gpt_sovits": {"checkout": str(checkout), "python": sys.executable}}})
    original = (folder / "character_voices.yaml").read_text()
    from studio.flows.train_voice import train_voice
    from studio.resources.voice.config import load_character_voices

    res = train_voice("Luca Paguro", str(dataset), exp_name="luca-ft", profile="gpu", require_cuda=False,
                      sovits_epochs=2, gpt_epochs=3)
    assert res["status"] == "trained", res["message"]
    calls = [json.loads(line) for line in fake_log.read_text().splitlines()]
    assert [c["script"] for c in calls] == ["1-get-text.py", "2-get-hubert-wav32k.py", "3-get-semantic.py",
                                            "s2_train.py", "s1_train.py"]
    opt = checkout / "logs" / "luca-ft"
    assert all(c["cwd"] == str(checkout) for c in calls)
    assert calls[0]["env"]["inp_text"] == str(dataset) and calls[0]["env"]["opt_dir"] == str(opt)
    assert calls[1]["env"]["cnhubert_base_dir"].endswith("chinese-hubert-base")
    assert calls[2]["env"]["pretrained_s2G"].endswith("s2G2333k.pth") and calls[4]["env"]["hz"] == "25hz"
    # per-part outputs merged the way the webui does
    assert (opt / "2-name2text.txt").read_text().count("\n") == 4
    assert (opt / "6-name2semantic.tsv").read_text().startswith("item_name\tsemantic_audio\n")
    # the templates' own keys survive, ours are set
    s2 = json.loads(Path(res["plan"]["s2_config"]).read_text())
    assert s2["train"]["seed"] == 1234 and s2["train"]["epochs"] == 2 and s2["data"]["exp_dir"] == str(opt)
    # registered, comments kept, still valid, neutral reference kept
    gpt = checkout / "GPT_weights_v2" / "luca-ft-e3.ckpt"
    sovits = checkout / "SoVITS_weights_v2" / "luca-ft_e2_s40.pth"
    assert res["weights"] == {"gpt": str(gpt), "sovits": str(sovits)}
    luca = load_character_voices().voices["luca"].gpt_sovits
    assert (luca.gpt_weights, luca.sovits_weights) == (str(gpt), str(sovits))
    assert luca.references["neutral"][0].text == "I've never seen the town up close before."
    edited = (folder / "character_voices.yaml").read_text()
    assert "# Character voices, keyed by" in edited and edited.count("\n") >= original.count("\n") - 2
