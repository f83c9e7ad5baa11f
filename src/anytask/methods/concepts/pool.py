"""The unlabelled pool the sparse autoencoder learns from (DN-CBM's CC3M stand-in).

Train texts of every task under the data root, shuffled with seed 0 and capped per task
(imdb's long reviews more tightly, to keep embedding on a CPU within minutes); test texts
are never in the pool. Embedded through the spine's cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anytask.backbones import Embedder, get_backbone
from anytask.data import list_tasks, load_task
from anytask.data.sources import shared_data_root

DATA = (shared_data_root() or Path("shared/data")) / "text"
CAPS = {"imdb": 2000}


def pool_texts(data_root: Path = DATA, cap: int = 8000) -> list[str]:
    texts: list[str] = []
    for name in list_tasks(data_root):
        train, _ = load_task(data_root, name)
        order = np.random.default_rng(0).permutation(len(train))[: CAPS.get(name, cap)]
        texts += [train.X[i] for i in order]
    return list(dict.fromkeys(texts))


def embedded_pool(data_root: Path = DATA, cap: int = 8000, backbone: str = "minilm") -> tuple[list[str], np.ndarray]:
    texts = pool_texts(data_root, cap)
    X = Embedder(get_backbone(backbone), progress=True).embed(texts)
    return texts, X


if __name__ == "__main__":
    texts, X = embedded_pool()
    print(len(texts), X.shape)
