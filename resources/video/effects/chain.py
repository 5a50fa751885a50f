"""Effects compiled to ffmpeg filtergraphs. `EffectChain` (the graph builder the segment renderer drives) turns
the resolved effect list (`library.resolve_effects`) into filtergraph lines, applied in order: a time effect
(slow motion, speed ramp, freeze) rewrites the timeline that later steps see and remaps the markers and sound
cues placed before it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.resources.media.text import render_text_png
from studio.resources.video.config import OutputFormat
from studio.resources.video.effects.library import _PERCENT, EffectError, EffectParamError, ResolvedEffect, load_library


# --------------------------------------------------------------------------- the filtergraph builder
@dataclass
class SoundCue:
    sound: str  # procedural generator name
    params: dict[str, Any]
    at: float  # seconds on the segment's timeline
    gain_db: float


@dataclass
class _Piece:
    f0: int
    f1: int
    speed: float = 1.0
    hold: int = 0  # >0: repeat frame f0 this many times

    @property
    def out_frames(self) -> int:
        return self.hold if self.hold else max(1, int(round((self.f1 - self.f0) / self.speed)))


@dataclass
class EffectChain:
    """Builds a filter_complex for one segment. `v` (and `a`, the shot's own audio when kept) name the current
    streams; each effect consumes them and leaves new labels. Frames are counted exactly: every stream stays at
    the output fps with timestamps N/fps, and the shot's audio stays sample-aligned to it."""

    fmt: OutputFormat
    nframes: int
    v: str
    a: str | None = None
    lines: list[str] = field(default_factory=list)
    inputs: list[list[str]] = field(default_factory=list)
    markers: dict[str, float] = field(default_factory=dict)
    sounds: list[SoundCue] = field(default_factory=list)
    scratch: Path | None = None
    default_caption: str | None = None
    font: str | None = None
    transition_in: float = 0.0
    # Text already on screen (captions): (top y, height, first frame, last frame); subtitles are placed clear of it.
    text_bands: list[tuple[int, int, int, int]] = field(default_factory=list)
    _count: int = 0
    _last_map: Any = None  # old time → new time of the latest time effect

    # ------------------------------------------------------------------ helpers
    @property
    def F(self) -> int:
        return self.fmt.fps

    @property
    def seconds(self) -> float:
        return self.nframes / self.F

    def label(self, prefix: str = "x") -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def add_input(self, args: list[str]) -> int:
        self.inputs.append(args)
        return len(self.inputs) - 1

    def time(self, value: Any, name: str, where: str) -> float:
        if isinstance(value, str):
            if value == "start":
                return 0.0
            if value == "end":
                return self.seconds
            m = _PERCENT.match(value)
            if m:
                return float(m[1]) / 100 * self.seconds
            if value not in self.markers:
                raise EffectParamError(f"{where}: '{name}' refers to marker '{value}', which no earlier step set "
                                       f"(set so far: {', '.join(sorted(self.markers)) or 'none'}); move the step "
                                       "after the effect that sets it")
            return self.markers[value]
        t = float(value)
        return self.seconds + t if t < 0 else t

    def frame(self, t: float) -> int:
        return max(0, min(self.nframes, int(round(t * self.F))))

    def _emit(self, src: str, chain: str, prefix: str = "v") -> str:
        out = self.label(prefix)
        self.lines.append(f"[{src}]{chain}[{out}]")
        return out

    # ------------------------------------------------------------------ dispatch
    def apply(self, eff: ResolvedEffect) -> None:
        where = f"effect '{eff.name}'" + (f" (recipe '{eff.recipe}')" if eff.recipe else "")
        p = eff.params
        if eff.kind == "sfx":
            sound = load_library().effects[eff.name].sound or eff.name
            extra = {k: v for k, v in p.items() if k not in ("at", "gain_db") and v is not None}
            self.sounds.append(SoundCue(sound, extra, self.time(p["at"], "at", where), p["gain_db"]))
            return
        handler = getattr(self, f"_fx_{eff.name}", None)
        if handler is None:
            raise EffectError(f"{where} is declared in configs/effects.yaml but the studio has no implementation "
                              f"for it (implemented: {', '.join(sorted(implemented_effects()))})")
        handler(p, where)

    # ------------------------------------------------------------------ zoom-based effects (zoompan)
    def _zoompan(self, z: str, cx: str, cy: str) -> None:
        W, H, ss = self.fmt.width, self.fmt.height, self.fmt.zoom_supersample
        sw, sh = int(round(W * ss / 2)) * 2, int(round(H * ss / 2)) * 2
        x = f"max(0,min(iw-iw/zoom,({cx})*iw-iw/zoom/2))"
        y = f"max(0,min(ih-ih/zoom,({cy})*ih-ih/zoom/2))"
        self.v = self._emit(self.v, f"scale={sw}:{sh}:flags=bicubic,zoompan=z='{z}':x='{x}':y='{y}':d=1:"
                                    f"s={W}x{H}:fps={self.F},setsar=1,setpts=N/{self.F}/TB")

    def _fx_ken_burns(self, p: dict, where: str) -> None:
        zs, ze = p["zoom_start"], p["zoom_end"]
        if p["pan"] != "none" and min(zs, ze) < 1.1:
            raise EffectParamError(f"{where}: pan '{p['pan']}' needs room: set zoom_start and zoom_end ≥ 1.1")
        span = max(self.nframes - 1, 1)
        prog = f"(on/{span})"
        z = f"{zs}+({ze - zs})*{prog}"
        m = (1 - 1 / max(min(zs, ze), 1.0)) / 2 * 0.95
        dx = {"left": 1, "right": -1}.get(p["pan"], 0) * m
        dy = {"up": 1, "down": -1}.get(p["pan"], 0) * m
        self._zoompan(z, f"{p['cx']}+{dx}*(1-2*{prog})", f"{p['cy']}+{dy}*(1-2*{prog})")

    def _fx_punch_in(self, p: dict, where: str) -> None:
        t = self.time(p["at"], "at", where)
        a = self.frame(t)
        r = max(1, int(round(p["ramp"] * self.F)))
        u = f"min(1,max(0,(on-{a})/{r}))"
        self._zoompan(f"1+({p['zoom'] - 1})*{u}*{u}*(3-2*{u})", str(p["cx"]), str(p["cy"]))
        self.markers["punch"] = a / self.F

    def _fx_shake(self, p: dict, where: str) -> None:
        a = self.frame(self.time(p["at"], "at", where))
        b = min(self.nframes, a + max(1, int(round(p["duration"] * self.F))))
        amp = p["amplitude"]
        inside = f"between(on,{a},{b - 1})"
        decay = f"(1-(on-{a})/{max(b - a, 1)})"
        z = f"if({inside},{1 + 2.2 * amp},1)"
        self._zoompan(z, f"0.5+{inside}*{amp}*{decay}*sin(on*2.39)", f"0.5+{inside}*{amp}*{decay}*cos(on*1.71)")

    def _fx_cutout(self, p: dict, where: str) -> None:
        """Nothing in the filter graph: the cut-out is composited before the chain, by the cut-out segment task
        (tasks/segmentation.py) that removes this step; where no segmenter is configured the footage plays uncut."""

    def _fx_flash(self, p: dict, where: str) -> None:
        a = self.frame(self.time(p["at"], "at", where))
        n = max(2, int(round(p["duration"] * self.F)))
        mid = a + n // 2
        self.v = self._emit(self.v, f"drawbox=x=0:y=0:w=iw:h=ih:color=white@0.85:t=fill:"
                                    f"enable='between(n,{a},{mid - 1})',drawbox=x=0:y=0:w=iw:h=ih:"
                                    f"color=white@0.4:t=fill:enable='between(n,{mid},{a + n - 1})'")

    def _fx_fade_in(self, p: dict, where: str) -> None:
        n = min(self.nframes, max(1, int(round(p["duration"] * self.F))))
        self.v = self._emit(self.v, f"fade=t=in:s=0:n={n}")
        if self.a:
            self.a = self._emit(self.a, f"afade=t=in:ss=0:ns={n * self.fmt.samples_per_frame}", "a")

    def _fx_fade_out(self, p: dict, where: str) -> None:
        n = min(self.nframes, max(1, int(round(p["duration"] * self.F))))
        self.v = self._emit(self.v, f"fade=t=out:s={self.nframes - n}:n={n}")
        if self.a:
            spf = self.fmt.samples_per_frame
            self.a = self._emit(self.a, f"afade=t=out:start_sample={(self.nframes - n) * spf}:ns={n * spf}", "a")

    def _fx_caption(self, p: dict, where: str) -> None:
        text = p["text"] or self.default_caption
        if not text:
            raise EffectParamError(f"{where}: no caption text: give params.text or the shot's caption")
        a = self.frame(self.time(p["at"], "at", where))
        b = self.nframes if p["duration"] is None else min(self.nframes, a + int(round(p["duration"] * self.F)))
        png, h = render_text_png(text, self.fmt.width, int(p["size"] * self.fmt.height), "caption",
                                 self.scratch_dir(), self.font)
        y = {"top": int(0.04 * self.fmt.height), "center": (self.fmt.height - h) // 2,
             "bottom": self.fmt.height - h - int(0.05 * self.fmt.height)}[p["position"]]
        self.overlay_png(png, y, a, b - 1)
        self.text_bands.append((y, h, a, b - 1))

    def overlay_png(self, png: Path, y: int, first_frame: int, last_frame: int) -> None:
        idx = self.add_input(["-i", str(png)])
        out = self.label("v")
        self.lines.append(f"[{self.v}][{idx}:v]overlay=x=0:y={y}:eof_action=repeat:"
                          f"enable='between(n,{first_frame},{last_frame})'[{out}]")
        self.v = out

    def scratch_dir(self) -> Path:
        if self.scratch is None:
            raise EffectError("internal: the chain has no scratch folder for rendered text")
        return self.scratch

    def _fx_crossfade(self, p: dict, where: str) -> None:
        self.transition_in = p["duration"]

    # ------------------------------------------------------------------ time effects
    def _fx_slow_motion(self, p: dict, where: str) -> None:
        f0 = self.frame(self.time(p["start"], "start", where))
        f1 = self.frame(self.time(p["end"], "end", where))
        if f1 <= f0:
            raise EffectParamError(f"{where}: end ({f1 / self.F:.2f} s) must be after start ({f0 / self.F:.2f} s)")
        self._retime([_Piece(0, f0), _Piece(f0, f1, p["factor"]), _Piece(f1, self.nframes)])

    def _fx_speed_ramp(self, p: dict, where: str) -> None:
        a = self.frame(self.time(p["at"], "at", where))
        b = min(self.nframes, a + max(4, int(round(p["duration"] * self.F))))
        if b - a < 4:
            raise EffectParamError(f"{where}: the ramp starts {a / self.F:.2f} s into a {self.seconds:.2f} s shot; "
                                   "move 'at' earlier so at least 4 frames are ramped")
        steps, factor = p["steps"], p["factor"]
        ease = [factor ** ((k + 1) / (steps + 1)) for k in range(steps)]  # geometric speeds 1 → factor
        speeds = ease + [factor] + ease[::-1]
        length = b - a
        ease_len = max(1, length // 4)
        sizes = [max(1, ease_len // steps)] * steps
        sizes = sizes + [max(1, length - 2 * sum(sizes))] + sizes
        pieces, f = [_Piece(0, a)], a
        for size, speed in zip(sizes, speeds, strict=True):
            end = min(b, f + size)
            if end > f:
                pieces.append(_Piece(f, end, speed))
            f = end
        pieces.append(_Piece(f, self.nframes))
        self._retime(pieces)
        self.markers["ramp"] = self._remapped_start(a)
        self.markers["ramp_end"] = self._remapped_start(f)

    def _fx_freeze_frame(self, p: dict, where: str) -> None:
        t = self.time(p["at"], "at", where)
        f = min(self.frame(t), self.nframes - 1)
        hold = max(1, int(round(p["hold"] * self.F)))
        self._retime([_Piece(0, f), _Piece(f, f + 1, hold=hold + 1), _Piece(f + 1, self.nframes)])
        self.markers["freeze"] = f / self.F
        self.markers["freeze_end"] = (f + 1 + hold) / self.F

    def _remapped_start(self, frame: int) -> float:
        return self._last_map(frame / self.F) if self._last_map else frame / self.F

    def _retime(self, pieces: list[_Piece]) -> None:
        pieces = [pc for pc in pieces if pc.hold or pc.f1 > pc.f0]
        F, spf = self.F, self.fmt.samples_per_frame
        vl = [self.label("p") for _ in pieces]
        if len(pieces) > 1:
            self.lines.append(f"[{self.v}]split={len(pieces)}" + "".join(f"[{x}]" for x in vl))
        else:
            vl = [self.v]
        outs = []
        for pc, src in zip(pieces, vl, strict=True):
            n = pc.out_frames
            if pc.hold:
                chain = (f"trim=start_frame={pc.f0}:end_frame={pc.f0 + 1},setpts=PTS-STARTPTS,"
                         f"loop=loop={n - 1}:size=1:start=0")
            elif pc.speed == 1.0:
                chain = f"trim=start_frame={pc.f0}:end_frame={pc.f1},setpts=PTS-STARTPTS"
            else:
                chain = (f"trim=start_frame={pc.f0}:end_frame={pc.f1},setpts=PTS-STARTPTS,settb=AVTB,"
                         f"setpts=PTS/{pc.speed:.6f},fps={F},tpad=stop_mode=clone:stop={n},trim=end_frame={n}")
            outs.append(self._emit(src, chain + f",settb=1/{F},setpts=N", "q"))
        self.v = self._emit("][".join(outs), f"concat=n={len(outs)}:v=1:a=0,settb=1/{F},setpts=N")
        if self.a:
            al = [self.label("ap") for _ in pieces]
            if len(pieces) > 1:
                self.lines.append(f"[{self.a}]asplit={len(pieces)}" + "".join(f"[{x}]" for x in al))
            else:
                al = [self.a]
            aouts = []
            for pc, src in zip(pieces, al, strict=True):
                n = pc.out_frames * spf
                if pc.hold:
                    # the split output must still be consumed: trim it to nothing, then use silence
                    self.lines.append(f"[{src}]atrim=end_sample=1,anullsink")
                    sil = self.label("as")
                    self.lines.append(f"anullsrc=r={self.fmt.sample_rate}:cl=stereo,atrim=end_sample={n}[{sil}]")
                    aouts.append(sil)
                    continue
                chain = f"atrim=start_sample={pc.f0 * spf}:end_sample={pc.f1 * spf},asetpts=PTS-STARTPTS"
                if pc.speed != 1.0:
                    chain += "," + _atempo(pc.speed) + f",apad=whole_len={n},atrim=end_sample={n}"
                aouts.append(self._emit(src, chain, "aq"))
            self.a = self._emit("][".join(aouts), f"concat=n={len(aouts)}:v=0:a=1", "a")
        # Remap every time already placed (markers, sounds) onto the new timeline.
        starts, acc = [], 0
        for pc in pieces:
            starts.append(acc)
            acc += pc.out_frames

        def remap(t: float) -> float:
            f = t * F
            for pc, s in zip(pieces, starts, strict=True):
                if pc.f0 <= f < (pc.f0 + 1 if pc.hold else pc.f1):
                    return (s + (0 if pc.hold else (f - pc.f0) / pc.speed)) / F
            return acc / F

        self.markers = {k: remap(v) for k, v in self.markers.items()}
        for cue in self.sounds:
            cue.at = remap(cue.at)
        self._last_map = remap
        self.nframes = acc


def _atempo(speed: float) -> str:
    """atempo accepts 0.5–2.0 per instance on older ffmpeg builds: chain instances for bigger changes."""
    parts = []
    while speed < 0.5:
        parts.append("atempo=0.5")
        speed /= 0.5
    while speed > 2.0:
        parts.append("atempo=2.0")
        speed /= 2.0
    parts.append(f"atempo={speed:.6f}")
    return ",".join(parts)


@functools.cache
def implemented_effects() -> frozenset[str]:
    return frozenset(n.removeprefix("_fx_") for n in dir(EffectChain) if n.startswith("_fx_"))

