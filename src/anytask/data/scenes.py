"""Scenes of coarse tokens with hidden fine tokens (LSceneLLM, card 24): the card's toy scenes, and its
text-backed variant where regions are documents.

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
    question: np.ndarray  # (N,) colour id asked about, or (N, Dq) question vectors (text scenes)
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
        """Question ids (toy scenes); 0 when the questions are vectors."""
        return 0 if np.asarray(self.question).ndim == 2 else int(self.coarse.shape[2] - self.n_shapes)

    n_shapes: int = 6  # answer classes


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


def text_scenes(doc_tokens: list[list[str]], doc_states: np.ndarray, labels: np.ndarray, word_vectors: dict,
                n: int, *, regions: int = 8, classes: int | None = None, seed: int = 0) -> Scenes:
    """The card's text-backed variant: each region is a document, its fine tokens are its first ``F`` token states
    ``doc_states (M, F, D)`` (a frozen encoder's, e.g. MiniLM's), its coarse token their mean. The question is
    the vector ``word_vectors[w]`` of a word ``w`` among the fine tokens of exactly one document of the scene;
    the answer is that document's label (``labels (M,)`` as integer ids). ``doc_tokens[i]`` are the token
    strings behind ``doc_states[i]``; only words in ``word_vectors`` are asked about. ``classes``: the number of
    answer classes (default: the largest label + 1)."""
    doc_states = np.asarray(doc_states, np.float32)
    m = len(doc_tokens)
    if doc_states.ndim != 3 or len(doc_states) != m or len(labels) != m or m < regions:
        raise AnytaskError(f"text_scenes: {m} documents, states {doc_states.shape}, {len(labels)} labels; give "
                           f"one (F, D) state block and one label per document, at least {regions} documents")
    sets = [set(t) for t in doc_tokens]
    askable = [[w for w in dict.fromkeys(t) if w in word_vectors] for t in doc_tokens]
    if not any(askable):
        raise AnytaskError("text_scenes: no document has a token with a word vector to ask about")
    rng = np.random.default_rng(seed)
    q, docs, rel = [], [], []
    while len(q) < n:
        d0 = int(rng.integers(m))
        if not askable[d0]:
            continue
        w = askable[d0][int(rng.integers(len(askable[d0])))]
        others = [int(i) for i in rng.permutation(m)[:regions * 4] if i != d0 and w not in sets[i]][:regions - 1]
        if len(others) < regions - 1:
            continue
        at = int(rng.integers(regions))
        scene = others[:at] + [d0] + others[at:]
        q.append(np.asarray(word_vectors[w], np.float32))
        docs.append(scene)
        rel.append(at)
    docs = np.asarray(docs)  # (N, R)
    fine = doc_states[docs]  # (N, R, F, D)
    labels = np.asarray(labels)
    return Scenes(np.stack(q), fine.mean(axis=2), fine, labels[docs[np.arange(n), rel]], np.asarray(rel),
                  int(labels.max()) + 1 if classes is None else int(classes))
