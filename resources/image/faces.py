"""Face embedders for character consistency (a keyframe's face vs the character's reference images).

- `InsightFaceEmbedder` (profile `gpu`): ArcFace identity embeddings from insightface's `buffalo_l` pack;
  cosine similarity, threshold 0.60–0.65 (InstantID practice). Needs `insightface` + onnxruntime and the model
  pack under `~/.insightface/models/` (or the entry's `options.root`); never downloaded at run time.
- `MediapipeFaceEmbedder` (profile `preview`, CPU): a *geometric signature* from mediapipe 0.10's face mesh —
  30 landmarks (eye and mouth corners, brows, nose, jaw, chin) in 3-D, centred and scaled, compared after an
  orthogonal Procrustes alignment (which removes head rotation). It checks that proportions match, it does
  not recognise identity the way ArcFace does. Score = 1 − residual / 0.12, clipped to [0, 1]; calibrated on
  a real portrait: JPEG-30 re-encode 0.77, 15° roll 0.87, 15 % horizontal stretch 0.52, 30 % stretch 0.16.

Both find the largest face first (a full-range detector), so a small face in a wide frame is still measured.
Cartoon animals often have no detectable human face: `embed` then returns None and the check records
"no face" instead of a score.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry

# Face-mesh indices: eye corners, brows, nose, mouth, lips, chin, jaw, forehead, eyelids.
SIGNATURE_LANDMARKS = (33, 133, 362, 263, 70, 105, 107, 336, 334, 300, 1, 2, 6, 98, 327, 61, 291, 0, 14, 17, 152,
                       234, 454, 172, 397, 10, 159, 145, 386, 374)
SIGNATURE_SCALE = 0.12  # Procrustes residual at which the geometric score reaches 0


class FaceEmbedderError(StudioError):
    pass


@runtime_checkable
class FaceEmbedder(Protocol):
    name: str
    heavy: bool
    model_id: str
    default_threshold: float

    def embed(self, image_path: Path | str) -> np.ndarray | None:
        """The embedding of the largest face in the image, or None when no face is found."""

    def embed_many(self, image_paths: list[Path | str]) -> list[np.ndarray | None]:
        """`embed` for several images in one go (a heavy embedder holds the GPU once)."""

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Higher = more alike; compared against the consistency threshold."""


def _read_rgb(path: Path | str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def face_box(image: Path | str, pad_bottom: float = 0.0) -> tuple[int, int, int, int] | None:
    """The largest face's box (x0, y0, x1, y1) from mediapipe's face mesh — brow to chin, cheek to cheek —
    extended by `pad_bottom` of its height below the chin; None when no face is found (or it is tiny)."""
    rgb = _read_rgb(image)
    pts = MediapipeFaceEmbedder().landmarks(rgb)
    if pts is None:
        return None
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()
    y1 += pad_bottom * (y1 - y0)
    box = (int(max(0, np.floor(x0))), int(max(0, np.floor(y0))), int(min(w, np.ceil(x1))), int(min(h, np.ceil(y1))))
    return box if box[2] - box[0] >= 16 and box[3] - box[1] >= 16 else None


def box_blend_mask(w: int, h: int, top: float = 0.0, feather: float = 0.12) -> np.ndarray:
    """(h, w, 1) blend weights for pasting an edit into a face box: 1 from `top` of the box height down, ramping
    to 0 over `feather` of the box's smaller side towards every edge — so nothing outside the box changes."""
    ramp = max(1.0, feather * min(w, h))
    ys, xs = np.arange(h, dtype=np.float32) + 0.5, np.arange(w, dtype=np.float32) + 0.5
    wy = np.clip((ys - top * h) / ramp, 0, 1) * np.clip((h - ys) / ramp, 0, 1)
    wx = np.clip(xs / ramp, 0, 1) * np.clip((w - xs) / ramp, 0, 1)
    return (wy[:, None] * wx[None, :])[:, :, None]


class MediapipeFaceEmbedder:
    heavy = False
    default_threshold = 0.62

    def __init__(self, name: str = "mediapipe-face", entry: ModelEntry | None = None):
        self.name, self.entry = name, entry
        try:
            import mediapipe as mp
        except ImportError as e:
            raise FaceEmbedderError("the preview face check needs mediapipe 0.10.x: "
                                    "`pip install --no-deps mediapipe==0.10.14 absl-py attrs flatbuffers "
                                    "matplotlib 'protobuf<5'`") from e
        self._mp = mp
        self.model_id = f"mediapipe-facemesh@{mp.__version__}+sig1"
        self._lock = threading.Lock()  # mediapipe graphs are not thread-safe; Prefect runs tasks in threads
        self._detector: Any = None
        self._mesh: Any = None

    def _models(self) -> tuple[Any, Any]:
        if self._detector is None:
            sol = self._mp.solutions
            self._detector = sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
            self._mesh = sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                                min_detection_confidence=0.5)
        return self._detector, self._mesh

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """Signature landmarks (K×3, pixels) of the largest face, or None."""
        h, w = rgb.shape[:2]
        with self._lock:
            detector, mesh = self._models()
            found = detector.process(rgb).detections or []
            crops = []
            for det in sorted(found, key=lambda d: -d.location_data.relative_bounding_box.width)[:1]:
                b = det.location_data.relative_bounding_box
                cx, cy, side = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, max(b.width * w, b.height * h)
                half = side * 1.0  # face mesh wants the face with a margin around it
                x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
                x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
                if x1 - x0 > 8 and y1 - y0 > 8:
                    crops.append((x0, y0, np.ascontiguousarray(rgb[y0:y1, x0:x1])))
            crops.append((0, 0, rgb))  # a face that fills the frame can escape the detector
            for x0, y0, crop in crops:
                res = mesh.process(crop)
                if res.multi_face_landmarks:
                    ch, cw = crop.shape[:2]
                    lm = res.multi_face_landmarks[0].landmark
                    return np.array([[lm[i].x * cw + x0, lm[i].y * ch + y0, lm[i].z * cw] for i in SIGNATURE_LANDMARKS])
        return None

    def embed(self, image_path: Path | str) -> np.ndarray | None:
        pts = self.landmarks(_read_rgb(image_path))
        if pts is None:
            return None
        pts = pts - pts.mean(axis=0)
        return (pts / np.linalg.norm(pts)).ravel()

    def embed_many(self, image_paths: list[Path | str]) -> list[np.ndarray | None]:
        return [self.embed(p) for p in image_paths]

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        pa, pb = a.reshape(-1, 3), b.reshape(-1, 3)
        u, s, vt = np.linalg.svd(pb.T @ pa)
        residual = float(np.linalg.norm(pa - (pb @ (u @ vt)) * s.sum()))
        return float(np.clip(1.0 - residual / SIGNATURE_SCALE, 0.0, 1.0))


class InsightFaceEmbedder:
    """ArcFace (insightface `buffalo_l`): heavy, so it loads through the residency manager on the GPU."""

    default_threshold = 0.62

    def __init__(self, name: str, entry: ModelEntry):
        import importlib.util

        self.name, self.entry = name, entry
        self.heavy = entry.heavy
        self.pack = entry.source or "buffalo_l"
        self.root = Path(entry.options.get("root", "~/.insightface")).expanduser()
        self.model_id = f"insightface-{self.pack}"
        if importlib.util.find_spec("insightface") is None:
            raise FaceEmbedderError("the ArcFace face check needs the packages insightface and onnxruntime-gpu "
                                    "(the studio's gpu extra); or set the profile's face model to mediapipe-face "
                                    "in configs/models.yaml, or disable the check (consistency: {enabled: false})")
        if not (self.root / "models" / self.pack).is_dir():
            raise FaceEmbedderError(f"insightface model pack '{self.pack}' not found under {self.root}/models; "
                                    "copy it there (it is never downloaded at run time) or set options.root")

    def _load(self, device: str) -> Any:
        from insightface.app import FaceAnalysis

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") \
            else ["CPUExecutionProvider"]
        app = FaceAnalysis(name=self.pack, root=str(self.root), providers=providers,
                           allowed_modules=["detection", "recognition"])
        app.prepare(ctx_id=0 if device.startswith("cuda") else -1, det_size=(640, 640))
        return app

    def heavy_model(self):
        from studio.resources.runtime.residency import HeavyModel

        # ONNX sessions cannot move between devices: parking drops the session (a reload takes ~1 s).
        return HeavyModel(name=self.model_id, load=self._load,
                          activate=lambda handle, device: handle if handle is not None else self._load(device),
                          park=lambda handle: None, est_host_gb=0.0)

    def embed(self, image_path: Path | str) -> np.ndarray | None:
        return self.embed_many([image_path])[0]

    def embed_many(self, image_paths: list[Path | str]) -> list[np.ndarray | None]:
        from studio.resources.runtime.residency import get_residency

        out: list[np.ndarray | None] = []
        with get_residency().use(self.heavy_model()) as app:
            for path in image_paths:
                faces = app.get(_read_rgb(path)[:, :, ::-1].copy())  # insightface wants BGR
                if not faces:
                    out.append(None)
                    continue
                face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
                out.append(np.asarray(face.normed_embedding, dtype=np.float32))
        return out

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
