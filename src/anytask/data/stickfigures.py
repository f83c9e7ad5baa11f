"""Synthetic people for clothes-changing re-identification, and the low-quality degradations of RLQ (card 11).

``stick_figures(n_ids, sessions, frames)`` renders 64 x 32 colour images of stick figures. An *identity* fixes the
body: head size, torso / arm / leg lengths, shoulder and hip width, limb thickness, one of 3 skin tones, and a
binary coarse attribute (``gender``: it widens the shoulders or the hips, so it is entangled with identity, as in
the paper). A *session* redraws the clothes (shirt and trouser colours, striped or plain shirt), so the same
person is dressed differently across sessions. A *frame* draws a pose (arm and leg angles, torso lean), the
nuisance RLQ's pose branch is meant to absorb. Every image comes with its identity, session, gender and pose
parameters.

``degrade(images, kind, seed)`` makes the low-quality copies RLQ trains against: ``"blur"`` (Gaussian, sigma
1-2 px), ``"pixelate"`` (area down-sampling by 2-4, nearest up-sampling), ``"motion"`` (a 5-9 px line kernel at
a random angle) or ``"mixed"`` (one of the three per image); deterministic under ``seed``.

``external_images(n)`` is RLQ's task-agnostic unlabelled set: two MNIST digits stacked and tinted to the same
64 x 32 colour format (procedural shapes when the shared data is absent), unrelated to the identities.
"""

from __future__ import annotations

import numpy as np

from anytask.core.errors import AnytaskError

HEIGHT, WIDTH = 64, 32
SKIN = np.array([[0.95, 0.8, 0.7], [0.75, 0.55, 0.4], [0.45, 0.3, 0.2]], np.float32)  # 3 tones shared by all ids
POSE_NAMES = ("left_arm", "right_arm", "left_leg", "right_leg", "lean")
DEGRADATIONS = ("blur", "pixelate", "motion", "mixed")


def _identity(rng: np.random.Generator) -> dict:
    gender = int(rng.integers(2))
    return {"gender": gender, "head": rng.uniform(3.0, 5.0), "torso": rng.uniform(14, 20),
            "arm": rng.uniform(10, 15), "leg": rng.uniform(14, 21),
            "shoulder": rng.uniform(7, 10) + (3.0 if gender else 0.0),
            "hip": rng.uniform(3, 5) + (0.0 if gender else 3.0), "thick": rng.uniform(1.2, 2.4),
            "skin": SKIN[int(rng.integers(len(SKIN)))]}


def _clothes(rng: np.random.Generator) -> dict:
    return {"shirt": rng.uniform(0.05, 1.0, 3), "trousers": rng.uniform(0.05, 1.0, 3),
            "stripes": float(rng.uniform(0.6, 1.6)) if rng.random() < 0.5 else 0.0}


def _pose(rng: np.random.Generator) -> np.ndarray:
    """Angles from straight down, in radians: arms swing -1.4..1.4, legs -0.6..0.6; torso lean -0.2..0.2."""
    return np.array([rng.uniform(-1.4, 1.4), rng.uniform(-1.4, 1.4), rng.uniform(-0.6, 0.6),
                     rng.uniform(-0.6, 0.6), rng.uniform(-0.2, 0.2)], np.float32)


_YY, _XX = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)


def _segment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the segment a-b (points as (x, y))."""
    d = b - a
    t = np.clip(((_XX - a[0]) * d[0] + (_YY - a[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    return np.hypot(_XX - a[0] - t * d[0], _YY - a[1] - t * d[1])


def render(body: dict, clothes: dict, pose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One figure ``(3, 64, 32)`` in [0, 1] on a grey noisy background."""
    img = np.repeat(rng.uniform(0.1, 0.3) + 0.03 * rng.normal(size=(1, HEIGHT, WIDTH)), 3, 0).astype(np.float32)
    cx = WIDTH / 2 + rng.uniform(-1.5, 1.5)
    top = 2 + rng.uniform(0, 2)
    neck = np.array([cx, top + 2 * body["head"] + 1])
    lean = float(pose[4])
    hip = neck + body["torso"] * np.array([np.sin(lean), np.cos(lean)])
    sh = np.array([body["shoulder"] / 2, 0.0])
    hp = np.array([body["hip"] / 2, 0.0])

    def limb(start, length, angle, side):  # side -1 / +1: a positive angle swings the limb outwards
        return start + length * np.array([side * np.sin(angle), np.cos(angle)])

    w = body["thick"]
    shirt = np.minimum.reduce([_segment(neck, hip), _segment(neck - sh, neck + sh),
                               _segment(neck - sh, limb(neck - sh, body["arm"], pose[0], -1)),
                               _segment(neck + sh, limb(neck + sh, body["arm"], pose[1], 1))]) <= w
    legs = np.minimum.reduce([_segment(hip - hp, hip + hp),
                              _segment(hip - hp, limb(hip - hp, body["leg"], pose[2], -1)),
                              _segment(hip + hp, limb(hip + hp, body["leg"], pose[3], 1))]) <= w + 0.4
    head = np.hypot(_XX - neck[0], _YY - (top + body["head"])) <= body["head"]
    shirt_colour = clothes["shirt"][:, None] * np.ones(shirt.sum(), np.float32)
    if clothes["stripes"]:
        shirt_colour = shirt_colour * (1 - 0.45 * (np.sin(_YY[shirt] * clothes["stripes"] * 1.5) > 0))
    img[:, legs] = clothes["trousers"][:, None]
    img[:, shirt] = shirt_colour
    img[:, head] = body["skin"][:, None]
    return np.clip(img, 0, 1)


def stick_figures(n_ids: int, sessions: int = 2, frames: int = 8, seed: int = 0, first_id: int = 0) -> dict:
    """``{"images": (N, 3, 64, 32), "ids", "sessions", "gender", "pose": (N, 5)}`` for ``n_ids`` people (numbered
    from ``first_id``), each in ``sessions`` sets of clothes and ``frames`` poses per session."""
    if n_ids < 1 or sessions < 1 or frames < 1:
        raise AnytaskError(f"stick_figures(n_ids={n_ids}, sessions={sessions}, frames={frames}): each must be >= 1")
    rng = np.random.default_rng(seed)
    images, ids, sess, gender, poses = [], [], [], [], []
    for i in range(n_ids):
        body = _identity(rng)
        for s in range(sessions):
            clothes = _clothes(rng)
            for _ in range(frames):
                pose = _pose(rng)
                images.append(render(body, clothes, pose, rng))
                ids.append(first_id + i)
                sess.append(s)
                gender.append(body["gender"])
                poses.append(pose)
    return {"images": np.stack(images).astype(np.float32), "ids": np.array(ids), "sessions": np.array(sess),
            "gender": np.array(gender), "pose": np.stack(poses)}


def check_images(images) -> np.ndarray:
    """``images`` as float32 ``(N, 3, H, W)``; a clear error for any other shape."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise AnytaskError(f"images must be (N, 3, H, W) colour images, got shape {x.shape}")
    return x


def degrade(images, kind: str = "mixed", seed: int = 0) -> np.ndarray:
    """Low-quality copies of ``images`` ``(N, 3, H, W)`` (see the module docstring); the input is not changed."""
    import torch
    from torch.nn import functional as F

    if kind not in DEGRADATIONS:
        raise AnytaskError(f"degradation {kind!r}: use one of {', '.join(DEGRADATIONS)}")
    x = torch.from_numpy(check_images(images).copy())
    rng = np.random.default_rng(seed)
    kinds = rng.choice(DEGRADATIONS[:3], size=len(x)) if kind == "mixed" else [kind] * len(x)
    out = torch.empty_like(x)
    for i, k in enumerate(kinds):
        xi = x[i:i + 1]
        if k == "pixelate":
            f = int(rng.integers(2, 5))
            small = F.interpolate(xi, size=(max(1, xi.shape[2] // f), max(1, xi.shape[3] // f)), mode="area")
            out[i] = F.interpolate(small, size=xi.shape[2:], mode="nearest")[0]
            continue
        if k == "blur":
            sigma = float(rng.uniform(1.0, 2.0))
            r = np.arange(-4, 5, dtype=np.float32)
            g = np.exp(-r ** 2 / (2 * sigma ** 2))
            kernel = np.outer(g, g)
        else:  # motion: a line through the centre at a random angle
            length, angle = int(rng.integers(5, 10)), float(rng.uniform(0, np.pi))
            kernel = np.zeros((9, 9), np.float32)
            for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
                kernel[int(round(4 + t * np.sin(angle))), int(round(4 + t * np.cos(angle)))] = 1.0
        kernel = torch.from_numpy((kernel / kernel.sum()).astype(np.float32))[None, None].repeat(3, 1, 1, 1)
        out[i] = F.conv2d(F.pad(xi, (4, 4, 4, 4), mode="replicate"), kernel, groups=3)[0]
    return out.numpy()


def external_images(n: int, seed: int = 0, data_root=None) -> np.ndarray:
    """``n`` unlabelled ``(3, 64, 32)`` images unrelated to people: two MNIST digits stacked, tinted (procedural
    shapes when ``../shared/data`` is absent)."""
    from anytask.data.images import mnist_images, shapes

    try:
        digits = mnist_images(2 * n, size=32, seed=seed, data_root=data_root)
    except AnytaskError:
        digits = shapes(2 * n, size=32, seed=seed)
    rng = np.random.default_rng(seed)
    digits = digits[rng.permutation(len(digits))][:2 * n].reshape(n, 2, 32, 32)
    grey = np.concatenate([digits[:, 0], digits[:, 1]], axis=1)  # (n, 64, 32)
    tint = rng.uniform(0.3, 1.0, (n, 3, 1, 1)).astype(np.float32)
    back = rng.uniform(0.05, 0.3, (n, 1, 1, 1)).astype(np.float32)
    return np.clip(back + tint * grey[:, None], 0, 1).astype(np.float32)
