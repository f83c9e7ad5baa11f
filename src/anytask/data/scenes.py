"""Toy scenes of coarse tokens with hidden fine tokens (LSceneLLM, card 24).

A scene has ``regions`` coarse tokens; each is the mean of its ``fine`` hidden elements, and an element is the
one-hot of its colour ⊕ the one-hot of its shape (+ small noise). The question names a colour that occurs on
exactly one element of the scene; the answer is that element's shape. Averaging mixes the shapes of a region, so
the coarse tokens show *where* the colour is but not which shape it has: the answer needs the fine detail of one
region (the ``relevant`` one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError


@dataclass(frozen=True)
class Scenes:
    question: np.ndarray  # (N,) colour id asked about
    coarse: np.ndarray    # (N, R, D) region tokens (mean of their fine tokens)
    fine: np.ndarray      # (N, R, F, D) the hidden fine tokens
    answer: np.ndarray    # (N,) shape id of the one element of the asked colour
    relevant: np.ndarray  # (N,) the region that holds it

    def __len__(self) -> int:
        return len(self.question)

    def __getitem__(self, rows) -> "Scenes":
        return Scenes(self.question[rows], self.coarse[rows], self.fine[rows], self.answer[rows], self.relevant[rows],
                      self.n_shapes)

    @property
    def n_colours(self) -> int:
        return int(self.coarse.shape[2] - self.n_shapes)

    n_shapes: int = 6


def toy_scenes(n: int, *, regions: int = 16, fine: int = 4, colours: int = 12, shapes: int = 6,
               noise: float = 0.05, seed: int = 0) -> Scenes:
    """``n`` scenes; every scene's asked colour is on exactly one of its ``regions * fine`` elements."""
    if n < 1 or regions < 2 or fine < 2 or colours < 2 or shapes < 2:
        raise AnytaskError(f"toy_scenes(n={n}, regions={regions}, fine={fine}, colours={colours}, shapes={shapes}): "
                           "give at least one scene, two regions, two elements per region, two colours and shapes")
    rng = np.random.default_rng(seed)
    m = regions * fine
    q = rng.integers(0, colours, size=n)
    col = (q[:, None] + rng.integers(1, colours, size=(n, m))) % colours  # every colour but the asked one
    where = rng.integers(0, m, size=n)
    col[np.arange(n), where] = q
    shp = rng.integers(0, shapes, size=(n, m))
    feats = np.concatenate([np.eye(colours, dtype=np.float32)[col], np.eye(shapes, dtype=np.float32)[shp]], axis=2)
    feats += rng.normal(0, noise, size=feats.shape).astype(np.float32)
    fine_tokens = feats.reshape(n, regions, fine, colours + shapes)
    return Scenes(q, fine_tokens.mean(axis=2), fine_tokens, shp[np.arange(n), where], where // fine, shapes)
