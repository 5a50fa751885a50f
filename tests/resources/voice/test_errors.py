"""Bad voice requests fail before any audio is made, with messages that say what to change."""

from __future__ import annotations

import pytest
import yaml
from support.voice_setup import fresh_settings, make_config_dir  # noqa: F401

from studio.configs.errors import ConfigError, UnknownNameError


@pytest.fixture
def out(tmp_path):
    return tmp_path / "line.wav"


def _nothing_written(out):
    assert not out.exists() and not out.with_name("line.timing.json").exists()


def test_unknown_character(out):
    from studio.resources.voice.line import synthesize_line_file

    with pytest.raises(UnknownNameError, match="unknown character 'nemo'.*Known characters: alberto"):
        synthesize_line_file("nemo", "Hello.", "neutral", 0.5, out)
    _nothing_written(out)


def test_character_whose_voice_is_missing(tmp_path, monkeypatch, out):
    from studio.resources.voice.line import synthesize_line_file

    folder = make_config_dir(tmp_path, monkeypatch)
    voices = yaml.safe_load((folder / "character_voices.yaml").read_text())
    del voices["voices"]["giulia"]
    (folder / "character_voices.yaml").write_text(yaml.safe_dump(voices))
    with pytest.raises(UnknownNameError, match="character 'giulia' uses voice 'giulia', which is not in "
                                               "configs/character_voices.yaml"):
        synthesize_line_file("Giulia Marcovaldo", "Ciao.", "neutral", 0.5, out)
    _nothing_written(out)


@pytest.mark.parametrize("text", ["", "   \n\t", "?!… --", None])
def test_empty_text(text, out):
    from studio.resources.voice.base import EmptyTextError
    from studio.resources.voice.line import synthesize_line_file

    with pytest.raises(EmptyTextError, match="empty|no words"):
        synthesize_line_file("luca", text, "neutral", 0.5, out)
    _nothing_written(out)


def test_unknown_emotion_and_bad_intensity(out):
    from studio.resources.voice.base import VoiceError
    from studio.resources.voice.line import synthesize_line_file

    with pytest.raises(VoiceError, match="unknown emotion 'bored'.*known: neutral, happy"):
        synthesize_line_file("luca", "Hi.", "bored", 0.5, out)
    with pytest.raises(VoiceError, match="intensity must be between 0 and 1, got 1.5"):
        synthesize_line_file("luca", "Hi.", "happy", 1.5, out)
    _nothing_written(out)


def test_unsupported_language_names_the_supported_ones(out):
    from studio.resources.voice.base import UnsupportedLanguageError
    from studio.resources.voice.line import synthesize_line_file

    with pytest.raises(UnsupportedLanguageError, match=r"language 'fr' .* \(supported: en, it\)"):
        synthesize_line_file("luca", "Bonjour.", "neutral", 0.5, out, language="fr")
    _nothing_written(out)


def test_text_over_the_configured_maximum(tmp_path, monkeypatch, out):
    from studio.resources.voice.base import VoiceError
    from studio.resources.voice.line import synthesize_line_file

    make_config_dir(tmp_path, monkeypatch, tts={"text": {"max_chars": 100}})
    with pytest.raises(VoiceError, match="120 characters, more than text.max_chars=100"):
        synthesize_line_file("luca", "a" * 120, "neutral", 0.5, out)
    _nothing_written(out)


def test_unknown_backend_name(out):
    from studio.resources.voice.line import synthesize_line_file

    with pytest.raises(UnknownNameError, match="unknown voice backend 'festival'.*known: espeak, gpt-sovits"):
        synthesize_line_file("luca", "Hi.", "neutral", 0.5, out, backend="festival")


def test_corrupt_audio_is_reported(tmp_path):
    from studio.resources.media.audio_io import CorruptAudioError, decode_bytes, load_audio

    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(CorruptAudioError, match="junk.wav"):
        load_audio(junk)
    with pytest.raises(CorruptAudioError, match="empty"):
        decode_bytes(b"", "reply")
    with pytest.raises(CorruptAudioError, match="not decodable audio"):
        decode_bytes(b"<html>502 Bad Gateway</html>", "reply")
    with pytest.raises(CorruptAudioError, match="not found"):
        load_audio(tmp_path / "missing.flac")


def test_broken_voice_configs_name_the_field(tmp_path, monkeypatch):
    from studio.resources.voice.config import load_character_voices, load_tts_config

    folder = make_config_dir(tmp_path, monkeypatch)
    tts = yaml.safe_load((folder / "tts_config.yaml").read_text())
    del tts["emotions"]["neutral"]
    (folder / "tts_config.yaml").write_text(yaml.safe_dump(tts))
    with pytest.raises(ConfigError, match="(?s)tts_config.yaml.*must define .neutral."):
        load_tts_config()
    voices = yaml.safe_load((folder / "character_voices.yaml").read_text())
    voices["voices"]["luca"]["speed"] = 5
    voices["voices"]["luca"]["gpt_sovits"]["references"]["bored"] = {"audio": "x.wav"}
    (folder / "character_voices.yaml").write_text(yaml.safe_dump(voices))
    with pytest.raises(ConfigError, match=r"voices\.luca\.speed"):
        load_character_voices()
