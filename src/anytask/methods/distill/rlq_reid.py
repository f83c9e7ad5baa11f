"""RLQ's image mechanism (Pathak & Rawat 2025, "Coarse Attribute Prediction with Task Agnostic Distillation for
Real World Clothes Changing ReID", https://arxiv.org/abs/2505.12580; card 11), at the toy scale of the card's
reproduction plan: a small CNN re-identifies synthetic people (``anytask.data.stickfigures``) whose clothes change
between sessions, and must match low-quality queries (blur, pixelation, motion blur) against a clean gallery.

The registered ``rlq`` distiller is the text analogue (``rlq.py``); this is the paper's own setting, kept as an
estimator of its own because it trains a re-identification model rather than distilling a text backbone.

* **Baseline** (``tad=False, cap=False``): the BoT-style recipe, identity cross-entropy plus batch-hard triplet
  loss on PK batches (``ids_per_batch`` identities x ``per_id`` images).
* **CAP**, coarse attribute prediction (``cap=True``): a pose branch splits after the first convolutional block
  and predicts the k-means cluster (``pose_clusters``) of the known pose parameters; ``|cos(f_id, f_pose)|`` pushes
  pose out of the identity feature (disentangled); a gender head on the identity feature keeps that stable coarse
  attribute in it (entangled).
* **TAD**, task-agnostic distillation (``tad=True``): on an external unlabelled set unrelated to people
  (``stickfigures.external_images``: MNIST digits), the identity feature of a degraded image is pulled towards a
  teacher's feature of the clean image, ``1 - cos``. The teacher is an exponential moving average of the model
  (``ema``) and gets no gradient (the card's pitfall: without stop-gradient the features collapse). Steps
  alternate: even steps re-identification (+ CAP), odd steps TAD, so a TAD model takes ``steps`` of each.
* ``augment=True`` is the strongest simple baseline the paper does not run: half of every re-identification
  batch degraded the same way as the test queries (which needs no external set, but does know the degradations).

The card leaves unknown the number of clusters, the loss weights, the teacher and the distance; the choices here
(4 clusters, weights 1, an EMA teacher, cosine) are written in the parameters. ``transform`` gives L2-normalised
identity features; ``reid_metrics`` scores queries against a gallery (rank-1 and mAP).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError


def _block(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))


class ReIDNet(nn.Module):
    """Four convolutional blocks to a ``dim``-d identity feature; a pose branch after the first block."""

    def __init__(self, n_ids: int, n_pose: int, n_gender: int, dim: int = 64):
        super().__init__()
        self.stem = _block(3, 16)
        self.body = nn.Sequential(_block(16, 32), _block(32, 64), nn.Conv2d(64, dim, 3, padding=1),
                                  nn.BatchNorm2d(dim), nn.ReLU())
        self.pose_body = nn.Sequential(_block(16, 32), _block(32, dim))
        self.id_head = nn.Linear(dim, n_ids)
        self.pose_head = nn.Linear(dim, max(n_pose, 1))
        self.gender_head = nn.Linear(dim, max(n_gender, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x)).mean((2, 3))

    def pose_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pose_body(self.stem(x)).mean((2, 3))


def batch_hard_triplet(f: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Hermans et al. 2017: for each anchor its farthest positive and nearest negative (cosine distance)."""
    f = F.normalize(f, dim=1)
    d = 1 - f @ f.T
    same = y[:, None] == y[None, :]
    pos = (d * same).max(1).values
    neg = d.masked_fill(same, float("inf")).min(1).values
    return F.relu(pos - neg + margin).mean()


def reid_metrics(query: np.ndarray, query_ids, gallery: np.ndarray, gallery_ids) -> dict:
    """Rank-1 accuracy and mean average precision of cosine retrieval of ``gallery`` by ``query`` features."""
    q, g = np.asarray(query, np.float64), np.asarray(gallery, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-(q @ g.T), axis=1, kind="stable")
    hit = np.asarray(gallery_ids)[order] == np.asarray(query_ids)[:, None]
    ap = [np.mean((np.cumsum(h) / np.arange(1, len(h) + 1))[h]) if h.any() else 0.0 for h in hit]
    return {"rank1": float(hit[:, 0].mean()), "mAP": float(np.mean(ap))}


class RLQReID(BaseEstimator):
    """See the module docstring. ``fit(images, ids, pose=, gender=, external=)``; ``transform(images)``."""

    def __init__(self, *, tad: bool = True, cap: bool = True, augment: bool = False, steps: int = 600,
                 ids_per_batch: int = 16, per_id: int = 4, dim: int = 64, lr: float = 1e-3, margin: float = 0.3,
                 pose_clusters: int = 4, cos_weight: float = 1.0, tad_weight: float = 1.0, ema: float = 0.99,
                 degradation: str = "mixed", seed: int = 0, progress: bool = False) -> None:
        self.tad, self.cap, self.augment, self.steps = tad, cap, augment, steps
        self.ids_per_batch, self.per_id, self.dim, self.lr, self.margin = ids_per_batch, per_id, dim, lr, margin
        self.pose_clusters, self.cos_weight, self.tad_weight, self.ema = pose_clusters, cos_weight, tad_weight, ema
        self.degradation, self.seed, self.progress = degradation, seed, progress

    def _check(self, images, ids, pose, gender, external):
        from anytask.data.stickfigures import check_images

        x = check_images(images)
        y = np.asarray(ids)
        if len(y) != len(x):
            raise AnytaskError(f"{len(x)} images but {len(y)} identity labels; give one identity per image")
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2 or counts.min() < 2:
            raise AnytaskError("re-identification needs at least 2 identities with at least 2 images each (a "
                               f"triplet needs a positive); got {len(labels)} identities, the smallest with "
                               f"{counts.min()} image(s)")
        if self.cap and (pose is None or gender is None):
            raise AnytaskError("cap=True needs pose= (N, P) pose parameters and gender= (N,) labels; pass them "
                               "or use cap=False")
        if self.tad and external is None:
            raise AnytaskError("tad=True needs external= unlabelled (M, 3, H, W) images unrelated to the "
                               "identities (e.g. anytask.data.stickfigures.external_images); or use tad=False")
        if self.cap and (len(pose) != len(x) or len(gender) != len(x)):
            raise AnytaskError(f"pose and gender need one row per image ({len(x)}); got {len(pose)} and "
                               f"{len(gender)}")
        if self.tad and check_images(external).shape[1:] != x.shape[1:]:
            raise AnytaskError(f"external images have shape {np.shape(external)[1:]}, the identities' images "
                               f"{x.shape[1:]}; give both the same size")
        return x, y

    def fit(self, images, ids, *, pose=None, gender=None, external=None) -> "RLQReID":
        from sklearn.cluster import KMeans

        from anytask.data.stickfigures import degrade

        x, y = self._check(images, ids, pose, gender, external)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        rng = np.random.default_rng(self.seed)
        by_id = [np.flatnonzero(y_idx == c) for c in range(len(self.classes_))]
        pose_idx = gender_idx = None
        if self.cap:
            km = KMeans(self.pose_clusters, n_init=10, random_state=self.seed).fit(np.asarray(pose, np.float64))
            self.pose_centres_, pose_idx = km.cluster_centers_, torch.from_numpy(km.labels_.astype(np.int64))
            self.genders_, g = np.unique(np.asarray(gender), return_inverse=True)
            gender_idx = torch.from_numpy(g.astype(np.int64))
        X = torch.from_numpy(x)
        X_lq = torch.from_numpy(degrade(x, self.degradation, self.seed + 1)) if self.augment else None
        if self.tad:
            E = torch.from_numpy(np.ascontiguousarray(external, dtype=np.float32))
            E_lq = torch.from_numpy(degrade(E.numpy(), self.degradation, self.seed + 2))
        Y = torch.from_numpy(y_idx.astype(np.int64))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = ReIDNet(len(self.classes_), self.pose_clusters if self.cap else 0, len(self.genders_) if self.cap
                          else 0, self.dim)
            teacher = copy.deepcopy(net).requires_grad_(False) if self.tad else None
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=5e-4)
            self.schedule_, self.loss_curve_ = [], []
            total = self.steps * (2 if self.tad else 1)
            for it in tqdm(range(total), desc="RLQ ReID fit", disable=not self.progress):
                net.train()
                if self.tad and it % 2 == 1:  # task-agnostic distillation on the external set
                    b = torch.from_numpy(rng.choice(len(E), size=self.ids_per_batch * self.per_id))
                    with torch.no_grad():
                        teacher.eval()
                        target = teacher.features(E[b])
                    loss = self.tad_weight * (1 - F.cosine_similarity(net.features(E_lq[b]), target)).mean()
                    self.schedule_.append("tad")
                else:
                    ids_ = rng.choice(len(by_id), size=min(self.ids_per_batch, len(by_id)), replace=False)
                    b = torch.from_numpy(np.concatenate([rng.choice(by_id[c], size=self.per_id) for c in ids_]))
                    xb = X[b]
                    if X_lq is not None:  # half the batch degraded
                        flip = torch.from_numpy(rng.random(len(b)) < 0.5)
                        xb = torch.where(flip[:, None, None, None], X_lq[b], xb)
                    f = net.features(xb)
                    loss = F.cross_entropy(net.id_head(f), Y[b]) + batch_hard_triplet(f, Y[b], self.margin)
                    if self.cap:
                        fp = net.pose_features(xb)
                        loss = loss + F.cross_entropy(net.pose_head(fp), pose_idx[b]) \
                            + self.cos_weight * F.cosine_similarity(f, fp).abs().mean() \
                            + F.cross_entropy(net.gender_head(f), gender_idx[b])
                    self.schedule_.append("reid")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.loss_curve_.append(float(loss.detach()))
                if teacher is not None:  # the teacher follows the model; it never receives a gradient
                    with torch.no_grad():
                        for pt, ps in zip(teacher.parameters(), net.parameters()):
                            pt.mul_(self.ema).add_(ps, alpha=1 - self.ema)
                        for bt, bs in zip(teacher.buffers(), net.buffers()):
                            bt.copy_(bs)
        self.net_, self.teacher_ = net.eval(), teacher
        return self

    def transform(self, images) -> np.ndarray:
        """L2-normalised identity features ``(N, dim)``."""
        from anytask.data.stickfigures import check_images

        if not hasattr(self, "net_"):
            raise AnytaskError("this RLQReID is not fitted yet; call fit(images, ids, ...) first")
        x = torch.from_numpy(np.ascontiguousarray(check_images(images)))
        with torch.no_grad():
            f = torch.cat([self.net_.features(x[i:i + 256]) for i in range(0, len(x), 256)])
        return F.normalize(f, dim=1).numpy()

    def pose_features(self, images) -> np.ndarray:
        """The pose branch's features (CAP only): what the identity feature is pushed away from."""
        if not self.cap or not hasattr(self, "net_"):
            raise AnytaskError("pose features need a model fitted with cap=True")
        with torch.no_grad():
            return self.net_.pose_features(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).numpy()
