"""Small grey images, procedural image tasks and grids of (condition, target) panels, for the generative family
(VisualCloze, card 31; IC-LoRA, card 20).

* **Images:** ``shapes(n, size, seed)`` draws 1–3 rectangles, discs or bars of random grey levels on black;
  ``mnist_images(n, size, seed)`` takes the MNIST test digits of ``../shared/data/vision`` resized by area
  averaging. Every image is ``(H, W)`` float32 in [0, 1].
* **Tasks:** an atomic operation (``ATOMIC``: colour inversion, flips, 90° rotation, transpose, circular shifts,
  edge map, thresholding, 3×3 dilation / erosion / blur) or a composition written ``"a+b"`` (``a`` first).
  ``apply(task, images)`` maps a batch ``(N, H, W)``; ``prompt(task)`` is its text description.
  ``inverse(task)`` names the inverse of an invertible task (the *reverse* task: target → condition).
* **Splits** fixed here, before any run: ``TRAIN_TASKS`` (10 atomic operations and every ordered pair of two
  different ones, less the pairs that compute the same function as a held-out task: ``flip_h+rot90`` is the
  transpose, ``flip_v+invert`` is ``invert+flip_v``; checked on a probe set by ``same_function``),
  ``HELDOUT_TASKS`` (atomic operations never trained: transpose, erode), ``HELDOUT_COMPOSITIONS`` (pairs of
  trained operations never trained together) and ``REVERSE_TASKS`` (inverses of trained shifts and the rotation,
  never trained).
* **Grids:** ``pack(grid)`` lays rows of equal panels into one canvas with a boolean mask over the one missing
  panel (``None``); ``unpack`` inverts it exactly. ``task_grids(task, n, context_rows, ...)`` samples grids whose
  last row's target is the missing panel, with the truth.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from anytask.core.errors import AnytaskError

SHIFT = 3  # pixels moved by the shift operations (circular, so they are invertible)


def _pad3(x: np.ndarray, value: float) -> np.ndarray:
    return np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=value)


def _window(x: np.ndarray, reduce, value: float) -> np.ndarray:
    """3×3 neighbourhood ``reduce`` (max, min, mean) of every pixel, the border padded with ``value``."""
    p = _pad3(x, value)
    h, w = x.shape[1:]
    stack = np.stack([p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)])  # (9, N, H, W)
    return reduce(stack, axis=0)


def _dilate(x):
    return _window(x, np.max, 0.0)


def _erode(x):
    return _window(x, np.min, 0.0)


ATOMIC = {
    "invert": lambda x: 1.0 - x,
    "flip_h": lambda x: x[:, :, ::-1],
    "flip_v": lambda x: x[:, ::-1, :],
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "rot270": lambda x: np.rot90(x, -1, axes=(1, 2)),
    "transpose": lambda x: x.transpose(0, 2, 1),
    "shift_right": lambda x: np.roll(x, SHIFT, axis=2),
    "shift_left": lambda x: np.roll(x, -SHIFT, axis=2),
    "shift_down": lambda x: np.roll(x, SHIFT, axis=1),
    "shift_up": lambda x: np.roll(x, -SHIFT, axis=1),
    "edges": lambda x: _dilate(x) - _erode(x),
    "threshold": lambda x: (x > 0.5).astype(np.float32),
    "dilate": _dilate,
    "erode": _erode,
    "blur": lambda x: _window(x, np.mean, 0.0),
}
PROMPTS = {
    "invert": "invert the grey levels", "flip_h": "mirror the image left to right",
    "flip_v": "flip the image upside down", "rot90": "rotate the image a quarter turn anticlockwise",
    "rot270": "rotate the image a quarter turn clockwise", "transpose": "transpose the image along its diagonal",
    "shift_right": "move the image three pixels right", "shift_left": "move the image three pixels left",
    "shift_down": "move the image three pixels down", "shift_up": "move the image three pixels up",
    "edges": "draw the outline edges of the shapes", "threshold": "make bright pixels white and dark pixels black",
    "dilate": "thicken the shapes by one pixel", "erode": "thin the shapes by one pixel",
    "blur": "blur the image slightly",
}
INVERSES = {"rot90": "rot270", "rot270": "rot90", "shift_right": "shift_left", "shift_left": "shift_right",
            "shift_down": "shift_up", "shift_up": "shift_down", "invert": "invert", "flip_h": "flip_h",
            "flip_v": "flip_v", "transpose": "transpose"}

TRAIN_ATOMIC = ("invert", "flip_h", "flip_v", "rot90", "shift_right", "shift_down", "edges", "threshold", "dilate",
                "blur")
HELDOUT_TASKS = ("transpose", "erode")
HELDOUT_COMPOSITIONS = ("invert+flip_v", "flip_h+shift_down", "edges+flip_h", "rot90+threshold")
REVERSE_TASKS = ("shift_left", "shift_up", "rot270")


def same_function(a: str, b: str, probe: np.ndarray | None = None) -> bool:
    """Whether two tasks give the same output on a fixed probe set of images (``flip_h+rot90`` *is* transpose,
    ``invert+flip_v`` is ``flip_v+invert``): training on one would leak the other."""
    probe = _PROBE if probe is None else probe
    return bool(np.allclose(apply(a, probe), apply(b, probe), atol=1e-6))


def _train_tasks() -> tuple[str, ...]:
    """The trained atomic operations and every ordered pair of two of them, less any pair that computes the same
    function as a held-out, composition or reverse task."""
    held = HELDOUT_TASKS + HELDOUT_COMPOSITIONS + REVERSE_TASKS
    pairs = [f"{a}+{b}" for a, b in itertools.permutations(TRAIN_ATOMIC, 2)]
    return TRAIN_ATOMIC + tuple(p for p in pairs if not any(same_function(p, h) for h in held))


def steps(task: str) -> list[str]:
    """The atomic operations of ``task`` in order, each checked."""
    if not isinstance(task, str) or not task:
        raise AnytaskError(f"task {task!r}: give an operation name or a composition like 'invert+flip_h'")
    ops = task.split("+")
    bad = [o for o in ops if o not in ATOMIC]
    if bad:
        raise AnytaskError(f"unknown image operation(s) {bad} in task {task!r}; known: {', '.join(ATOMIC)} "
                           "(compose with '+', applied left to right)")
    return ops


def apply(task: str, images: np.ndarray) -> np.ndarray:
    """``task`` applied to a batch ``(N, H, W)`` (or one ``(H, W)`` image) in [0, 1]; float32, values clipped."""
    x = np.asarray(images, np.float32)
    one = x.ndim == 2
    if one:
        x = x[None]
    if x.ndim != 3:
        raise AnytaskError(f"images have shape {x.shape}; pass (N, H, W) grey images or one (H, W) image")
    for op in steps(task):
        if op in ("rot90", "rot270", "transpose") and x.shape[1] != x.shape[2]:
            raise AnytaskError(f"{op} needs square images; these are {x.shape[1]}x{x.shape[2]}")
        x = ATOMIC[op](x)
    x = np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)
    return x[0] if one else x


def prompt(task: str) -> str:
    return ", then ".join(PROMPTS[o] for o in steps(task))


def inverse(task: str) -> str:
    """The task that undoes ``task`` (the reverse of a composition is the reversed inverses)."""
    ops = steps(task)
    missing = [o for o in ops if o not in INVERSES]
    if missing:
        raise AnytaskError(f"{task!r} has no inverse: {missing} lose information; invertible operations are "
                           f"{', '.join(INVERSES)}")
    return "+".join(INVERSES[o] for o in reversed(ops))


# -- images ---------------------------------------------------------------------------------------------------------

def shapes(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """``n`` procedural images ``(n, size, size)``: 1–3 filled rectangles, discs or bars of grey level 0.3–1."""
    if n < 0 or size < 6:
        raise AnytaskError(f"shapes(n={n}, size={size}): n must be >= 0 and size at least 6 pixels")
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        for _ in range(int(rng.integers(1, 4))):
            level = float(rng.uniform(0.3, 1.0))
            kind = int(rng.integers(3))
            if kind == 0:  # rectangle
                h, w = rng.integers(2, size // 2 + 1, size=2)
                r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
                out[i, r:r + h, c:c + w] = level
            elif kind == 1:  # disc
                rad = float(rng.uniform(1.5, size / 4))
                cy, cx = rng.uniform(rad, size - rad, size=2)
                out[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2] = level
            else:  # bar, horizontal or vertical
                length, at, start = int(rng.integers(size // 3, size)), int(rng.integers(size)), 0
                start = int(rng.integers(0, size - length + 1))
                if rng.random() < 0.5:
                    out[i, at, start:start + length] = level
                else:
                    out[i, start:start + length, at] = level
    return out


_PROBE = shapes(48, 16, seed=12345)
TRAIN_TASKS = _train_tasks()


def mnist_images(n: int, size: int = 16, seed: int = 0, data_root=None) -> np.ndarray:
    """``n`` MNIST test digits ``(n, size, size)`` in [0, 1], resized from 28 px by area averaging (torch)."""
    import torch
    from torch.nn import functional as F

    from anytask.data.sources import shared_data_root

    root = Path(data_root) if data_root is not None else shared_data_root()
    path = (root / "vision" / "mnist_test.npz") if root is not None else None
    if path is None or not path.is_file():
        raise AnytaskError(f"MNIST images need {path or '../shared/data/vision/mnist_test.npz'} (the shared "
                           "benchmark data); use source='shapes' without it")
    images = np.load(path)["images"]
    rows = np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False)
    x = torch.from_numpy(images[rows].astype(np.float32) / 255.0)[:, None]
    return F.interpolate(x, size=(size, size), mode="area")[:, 0].numpy().astype(np.float32)


def sample_images(source, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images from ``source``: ``"shapes"`` (fresh procedural images) or an array pool ``(M, H, W)``."""
    if isinstance(source, str):
        if source != "shapes":
            raise AnytaskError(f"image source {source!r}: use 'shapes' or pass an (M, H, W) array of images")
        return shapes(n, size, int(rng.integers(2 ** 31)))
    pool = np.asarray(source, np.float32)
    if pool.ndim != 3 or pool.shape[1:] != (size, size):
        raise AnytaskError(f"image pool has shape {pool.shape}; expected (M, {size}, {size})")
    return pool[rng.integers(0, len(pool), size=n)]


# -- grids ----------------------------------------------------------------------------------------------------------

def pack(grid) -> tuple[np.ndarray, np.ndarray]:
    """Rows of equal ``(H, W)`` panels, exactly one of them ``None`` (the panel to infill), as one canvas
    ``(R*H, C*W)`` (the missing panel zeros) and a boolean mask ``(R*H, C*W)`` that is True exactly there."""
    rows = [list(r) for r in grid]
    if not rows or any(len(r) == 0 for r in rows):
        raise AnytaskError("a grid is a non-empty list of non-empty rows of panels")
    cols = len(rows[0])
    if any(len(r) != cols for r in rows):
        raise AnytaskError(f"grid rows have {[len(r) for r in rows]} panels; every row needs the same number")
    panels = [np.asarray(p, np.float32) for r in rows for p in r if p is not None]
    missing = [(i, j) for i, r in enumerate(rows) for j, p in enumerate(r) if p is None]
    if len(missing) != 1:
        raise AnytaskError(f"a grid needs exactly one missing panel (None) to infill; this one has {len(missing)}"
                           + ("" if missing else ": the mask would cover no cell"))
    shapes_seen = {p.shape for p in panels}
    if len(shapes_seen) != 1 or len(next(iter(shapes_seen))) != 2:
        raise AnytaskError(f"grid panels have shapes {sorted(shapes_seen)}; every panel must be the same (H, W)")
    h, w = next(iter(shapes_seen))
    canvas = np.zeros((len(rows) * h, cols * w), np.float32)
    mask = np.zeros(canvas.shape, bool)
    for i, r in enumerate(rows):
        for j, p in enumerate(r):
            if p is None:
                mask[i * h:(i + 1) * h, j * w:(j + 1) * w] = True
            else:
                canvas[i * h:(i + 1) * h, j * w:(j + 1) * w] = p
    return canvas, mask


def unpack(canvas: np.ndarray, rows: int, cols: int) -> list[list[np.ndarray]]:
    """The panels of a ``(rows*H, cols*W)`` canvas, row by row (``pack``'s inverse, exact)."""
    canvas = np.asarray(canvas)
    if canvas.ndim != 2 or canvas.shape[0] % rows or canvas.shape[1] % cols:
        raise AnytaskError(f"a canvas of shape {canvas.shape} does not split into {rows}x{cols} equal panels")
    h, w = canvas.shape[0] // rows, canvas.shape[1] // cols
    return [[canvas[i * h:(i + 1) * h, j * w:(j + 1) * w].copy() for j in range(cols)] for i in range(rows)]


def task_grids(task: str, n: int, context_rows: int, *, size: int = 16, source="shapes", seed: int = 0):
    """``n`` grids of ``context_rows`` example rows ``[condition, target]`` and a query row ``[condition, None]``
    for ``task``, with the query targets ``(n, size, size)`` (the truth of each missing panel)."""
    if context_rows < 0:
        raise AnytaskError(f"context_rows={context_rows}: give 0 or more example rows")
    rng = np.random.default_rng(seed)
    conds = sample_images(source, n * (context_rows + 1), size, rng).reshape(n, context_rows + 1, size, size)
    targets = apply(task, conds.reshape(-1, size, size)).reshape(conds.shape)
    grids = [[[conds[i, r], targets[i, r]] for r in range(context_rows)] + [[conds[i, -1], None]] for i in range(n)]
    return grids, targets[:, -1]


def sheet(grids, fills: np.ndarray, truths: np.ndarray | None = None, *, gap: int = 2) -> np.ndarray:
    """One picture of several grids: each grid's missing panel drawn with its infill, the truth (when given) in an
    extra column beside the query row; grids stacked top to bottom, separated by grey lines."""
    blocks = []
    for i, g in enumerate(grids):
        rows = [list(r) for r in g]
        for r in rows:
            for j, p in enumerate(r):
                if p is None:
                    r[j] = fills[i]
        canvas, _ = pack([*rows[:-1], [*rows[-1][:-1], None]])
        s = np.asarray(fills[i]).shape[0]
        canvas[-s:, -np.asarray(fills[i]).shape[1]:] = fills[i]
        if truths is not None:
            extra = np.full((canvas.shape[0], s + gap), 0.5, np.float32)
            extra[-s:, gap:] = truths[i]
            canvas = np.concatenate([canvas, extra], axis=1)
        blocks.append(canvas)
    width = max(b.shape[1] for b in blocks)
    out = []
    for b in blocks:
        out += [np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=0.5),
                np.full((gap, width), 0.5, np.float32)]
    return np.concatenate(out[:-1])


def write_png(path, image: np.ndarray, *, scale: int = 4) -> Path:
    """A grey ``(H, W)`` image in [0, 1] as an 8-bit PNG (nearest-neighbour ``scale``-fold), with no imaging
    library: zlib and the PNG chunk layout, written atomically."""
    import struct
    import zlib

    from anytask.core.io import write_file_atomic

    img = np.asarray(image, np.float32)
    if img.ndim != 2:
        raise AnytaskError(f"write_png takes one grey (H, W) image; got shape {img.shape}")
    img = np.kron(np.clip(img, 0, 1), np.ones((scale, scale), np.float32))
    pixels = (img * 255 + 0.5).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return write_file_atomic(path, data)
