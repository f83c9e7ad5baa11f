"""AutoDistil: few-shot task-agnostic NAS for distilling language models (Xu et al., NeurIPS 2022,
https://arxiv.org/abs/2201.12507; card 23).

One weight-sharing SuperLM per sub-space of student shapes is sliced from the frozen teacher
(``anytask.backbones.superlm``) and trained task-agnostically on unlabelled text: each step follows the
sandwich rule (the largest, the smallest and ``sandwich - 2`` random sub-networks, gradients accumulated) and
the loss is the last layer's query-query, key-key and value-value relation MSE against the teacher, on
pre-softmax scores split into 12 relation heads (what the official code does; MiniLMv2's paper uses KL on
softmaxed relations), over real tokens only. ``search`` then ranks every sub-network by the same loss on
held-out text, under an optional FLOPs or parameter budget, without retraining; ``save_student`` writes the
chosen one as a sentence-transformers folder for ``hf:<folder>``.

The sub-spaces are the card's, scaled to MiniLM-L6 (``SUBSPACES``: 3 values per dimension, 27 sub-networks; the
residual width is tied to the attention width, ``heads * 32``, so a student is a standard BERT); ``"both"`` spans
the two (the one-SuperLM ablation). ``steps=0`` keeps the SuperLM untrained, every sub-network a plain slice of
the teacher: the control for what relation distillation adds. anytask adds one optional step the paper does not
have: ``align_steps`` trains the extracted student and a linear map to the teacher's width to reproduce the
teacher's sentence embeddings (cosine), so its frozen embeddings replace the teacher's for any head; results
report students with and without it.

    ad = AutoDistil(subspace="tiny", steps=300).fit(texts)
    ranking = ad.search(held_out, max_flops=ad.flops(ad.largest_) / 3)
    ad.save_student("minilm-l3", align_steps=300, texts=texts)   # then backbone "hf:minilm-l3"
"""

from __future__ import annotations

import itertools
import logging
import numbers
import random
from pathlib import Path

import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.methods.distill.base import DISTILLERS, write_student

log = logging.getLogger("anytask.distill")
SUBSPACES = {
    "tiny": {"layers": (2, 3, 4), "heads": (3, 6, 9), "ffn_ratio": (2, 3, 4)},
    "small": {"layers": (4, 5, 6), "heads": (6, 9, 12), "ffn_ratio": (2, 3, 4)},
    "both": {"layers": (2, 3, 4, 5, 6), "heads": (3, 6, 9, 12), "ffn_ratio": (2, 3, 4)},
}


def teacher_folder(teacher: str) -> Path:
    """The local folder of a teacher given as ``minilm``, ``hf:<folder>`` or a folder path."""
    from anytask.backbones.hf import minilm_path

    if teacher == "minilm":
        return minilm_path()
    folder = Path(teacher.removeprefix("hf:")).expanduser()
    if not folder.is_dir():
        raise AnytaskError(f"the teacher {teacher!r} is not a local model folder; distil from minilm or "
                           "hf:/path/to/a/bert/folder")
    return folder


@DISTILLERS.register("autodistil", reference="Xu et al. 2022, https://arxiv.org/abs/2201.12507", input="texts",
                     output="backbone", summary="weight-sharing SuperLM sliced from the teacher, sandwich-rule "
                     "self-attention relation distillation, proxy search by held-out relation loss")
class AutoDistil(BaseEstimator):
    def __init__(self, teacher: str = "minilm", subspace: str = "tiny", steps: int = 300, batch_size: int = 32,
                 max_length: int = 64, lr: float = 1e-4, weight_decay: float = 0.01, sandwich: int = 4,
                 seed: int = 0, progress: bool = True, checkpoint: str | None = None,
                 checkpoint_every: int = 50) -> None:
        self.teacher = teacher
        self.subspace = subspace
        self.steps = steps
        self.batch_size = batch_size
        self.max_length = max_length
        self.lr = lr
        self.weight_decay = weight_decay
        self.sandwich = sandwich
        self.seed = seed
        self.progress = progress
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every

    # -- the search space -----------------------------------------------------------------------------
    def space(self, superlm=None) -> list:
        from anytask.backbones.superlm import SubNet

        if isinstance(self.subspace, dict):  # a custom space: {"layers": (...), "heads": (...), "ffn_ratio": (...)}
            s = self.subspace
            if set(s) != {"layers", "heads", "ffn_ratio"}:
                raise AnytaskError(f"a custom sub-space needs exactly layers, heads and ffn_ratio; got {sorted(s)}")
        elif self.subspace in SUBSPACES:
            s = SUBSPACES[self.subspace]
        else:
            raise AnytaskError(f"unknown sub-space {self.subspace!r}; use one of {', '.join(SUBSPACES)} or a dict")
        superlm = superlm or self.superlm_
        shapes = [SubNet(L, H, r * H * superlm.head_width) for L, H, r in
                  itertools.product(s["layers"], s["heads"], s["ffn_ratio"])]
        for shape in shapes:
            superlm.check(shape)
        return shapes

    def flops(self, shape, tokens: int = 64) -> int:
        """Multiply-adds x 2 for one text of ``tokens`` tokens (embeddings and pooling left out)."""
        h = shape.width(self.superlm_.head_width)
        per_layer = tokens * (4 * h * h + 2 * h * shape.ffn) + 2 * tokens * tokens * h
        return int(2 * shape.layers * per_layer)

    def n_parameters(self, shape) -> int:
        c = self.superlm_.config
        h = shape.width(self.superlm_.head_width)
        embeddings = (c["vocab_size"] + c["max_position_embeddings"] + c.get("type_vocab_size", 2)) * h + 2 * h
        return int(embeddings + shape.layers * (4 * (h * h + h) + 2 * h * shape.ffn + shape.ffn + h + 4 * h))

    # -- training -------------------------------------------------------------------------------------
    def _setup(self):
        from anytask.backbones import create_backbone
        from anytask.backbones.superlm import SuperLM

        folder = teacher_folder(self.teacher)
        self.teacher_folder_ = folder
        self.teacher_backbone_ = create_backbone("minilm" if self.teacher == "minilm" else f"hf:{folder}")
        self.superlm_ = SuperLM(folder)
        self.tokenizer_ = self.teacher_backbone_.tokenizer

    def _batches(self, texts: list[str], rng: random.Random):
        while True:
            order = list(range(len(texts)))
            rng.shuffle(order)
            for i in range(0, len(order) - self.batch_size + 1, self.batch_size):
                yield self._tokenize([texts[j] for j in order[i:i + self.batch_size]])

    def _tokenize(self, texts: list[str]) -> dict:
        return dict(self.tokenizer_(texts, padding=True, truncation=True, max_length=self.max_length,
                                    return_tensors="pt"))

    def _loss(self, inputs, shape, target) -> torch.Tensor:
        """Relation MSE over real-token pairs, summed over QQ, KK, VV."""
        mask = inputs["attention_mask"].float()
        pair = (mask[:, None, :, None] * mask[:, None, None, :])  # (B, 1, T, T)
        diff = (self.superlm_.relations(inputs, shape) - target) ** 2  # (3, B, R, T, T)
        per = (diff * pair).sum(dim=(1, 2, 3, 4)) / (pair.sum() * diff.shape[2])
        return per.sum()

    def _target(self, inputs) -> torch.Tensor:
        from anytask.backbones.superlm import teacher_relations

        return teacher_relations(self.teacher_backbone_.model, inputs, self.superlm_.relation_heads)

    def fit(self, X, y=None) -> "AutoDistil":
        """Train the SuperLM on unlabelled texts ``X`` (``y`` is ignored)."""
        from anytask.backbones import state_hash
        from anytask.core.validation import check_texts

        texts = check_texts(X)
        if len(texts) < self.batch_size:
            raise AnytaskError(f"AutoDistil needs at least batch_size={self.batch_size} texts, got {len(texts)}")
        if self.sandwich < 2:
            raise AnytaskError("sandwich must be at least 2 (the largest and the smallest sub-network)")
        if not isinstance(self.steps, numbers.Integral) or isinstance(self.steps, bool) or self.steps < 0:
            raise AnytaskError(f"steps={self.steps!r}: give a whole number >= 0 (0 keeps the SuperLM untrained: "
                               "every sub-network is a plain slice of the teacher)")
        torch.manual_seed(self.seed)
        rng = random.Random(self.seed)
        self._setup()
        before = state_hash(self.teacher_backbone_)
        shapes = self.space()
        largest, smallest = max(shapes, key=self.flops), min(shapes, key=self.flops)
        self.largest_, self.smallest_ = largest, smallest
        params = list(self.superlm_.parameters())
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, self.steps // 10))
                                                  * max(0.0, 1 - s / max(1, self.steps)))
        self.history_, self.sampled_ = [], []
        batches = self._batches(texts, rng)
        others = [s for s in shapes if s not in (largest, smallest)]

        def draw():
            return [largest, smallest] + rng.sample(others, min(self.sandwich - 2, len(others)))

        fingerprint = self._fingerprint(texts)
        start = self._resume(fingerprint, opt, sched)
        for _ in range(start):  # replay the data order and the draws up to the checkpoint
            next(batches)
            draw()
        bar = tqdm(range(start, self.steps), desc="autodistil", unit="step", disable=not self.progress,
                   initial=start, total=self.steps)
        for step in bar:
            inputs = next(batches)
            target = self._target(inputs)
            chosen = draw()
            self.sampled_.append(chosen)
            opt.zero_grad()
            total = 0.0
            for shape in chosen:
                loss = self._loss(inputs, shape, target)
                loss.backward()
                total += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            self.history_.append(total / len(chosen))
            bar.set_postfix(loss=f"{self.history_[-1]:.3f}")
            if self.checkpoint and ((step + 1) % self.checkpoint_every == 0 or step + 1 == self.steps):
                self._save_checkpoint(fingerprint, step + 1, opt, sched)
        if state_hash(self.teacher_backbone_) != before:
            raise AnytaskError("internal error: the teacher changed during distillation")
        return self

    # -- resumable checkpoints ------------------------------------------------------------------------
    def _fingerprint(self, texts: list[str]) -> str:
        import hashlib

        keep = {k: v for k, v in self.get_params().items() if k not in ("progress", "checkpoint", "checkpoint_every")}
        h = hashlib.sha256(repr(sorted(keep.items())).encode())
        for t in texts:
            h.update(t.encode() + b"\0")
        return h.hexdigest()

    def _save_checkpoint(self, fingerprint: str, step: int, opt, sched) -> None:
        """The SuperLM, optimiser and schedule after ``step`` steps, written atomically (a crash mid-write
        leaves the previous checkpoint)."""
        import io

        from anytask.core.io import write_file_atomic

        buffer = io.BytesIO()
        torch.save({"fingerprint": fingerprint, "step": step, "superlm": self.superlm_.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": self.history_,
                    "sampled": [[s.as_dict() for s in chosen] for chosen in self.sampled_]}, buffer)
        write_file_atomic(self.checkpoint, buffer.getvalue())

    def _resume(self, fingerprint: str, opt, sched) -> int:
        """The step to start from: 0, or the step of a checkpoint of this same run (settings and texts)."""
        from anytask.backbones.superlm import SubNet

        if not self.checkpoint or not Path(self.checkpoint).is_file():
            return 0
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:
            raise AnytaskError(f"the checkpoint {self.checkpoint} cannot be read ({type(e).__name__}); delete it to "
                               "start over") from None
        if state.get("fingerprint") != fingerprint:
            raise AnytaskError(f"the checkpoint {self.checkpoint} belongs to another run (other settings or texts); "
                               "delete it, or pass another checkpoint path")
        self.superlm_.load_state_dict(state["superlm"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        self.history_ = list(state["history"])
        self.sampled_ = [[SubNet(**s) for s in chosen] for chosen in state["sampled"]]
        log.info("resuming %s from step %d", self.checkpoint, state["step"])
        return int(state["step"])

    # -- search and extraction ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "superlm_"):
            raise AnytaskError("this AutoDistil is not fitted yet; call fit(texts) first")

    def relation_loss(self, texts, shapes, batch_size: int = 64) -> list[float]:
        """Mean held-out relation loss of each sub-network in ``shapes`` (the teacher runs once per batch)."""
        self._check_fitted()
        totals, n = [0.0] * len(shapes), 0
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                inputs = self._tokenize(list(texts[i:i + batch_size]))
                target, size = self._target(inputs), len(inputs["input_ids"])
                for j, shape in enumerate(shapes):
                    totals[j] += float(self._loss(inputs, shape, target)) * size
                n += size
        return [t / n for t in totals]

    def search(self, texts, *, max_flops: int | None = None, max_params: int | None = None) -> list[dict]:
        """Every sub-network within the budget ranked by held-out relation loss (lowest first); the first is
        ``best_``. Nothing is retrained."""
        from anytask.core.validation import check_texts

        self._check_fitted()
        texts = check_texts(texts)
        shapes = [s for s in self.space() if (max_flops is None or self.flops(s) <= max_flops)
                  and (max_params is None or self.n_parameters(s) <= max_params)]
        if not shapes:
            raise AnytaskError(f"no sub-network of {self.subspace!r} fits the budget (max_flops={max_flops}, "
                               f"max_params={max_params}); the smallest needs {self.flops(self.smallest_)} FLOPs")
        losses = self.relation_loss(texts, shapes)
        rows = sorted(({**s.as_dict(), "flops": self.flops(s), "parameters": self.n_parameters(s),
                        "relation_loss": loss} for s, loss in zip(shapes, losses)), key=lambda r: r["relation_loss"])
        from anytask.backbones.superlm import SubNet

        self.ranking_ = rows
        self.best_ = SubNet(rows[0]["layers"], rows[0]["heads"], rows[0]["ffn"])
        return rows

    def save_student(self, folder, shape=None, *, align_steps: int = 0, texts=None, align_lr: float = 1e-4,
                     batch_size: int | None = None) -> Path:
        """Write sub-network ``shape`` (default ``best_``) as a sentence-transformers folder. With
        ``align_steps`` (anytask's addition, not the paper's) the student and a linear map to the teacher's width
        are first trained on ``texts`` to reproduce the teacher's sentence embeddings."""
        from anytask.backbones.superlm import SubNet, align_to_teacher

        self._check_fitted()
        if shape is None:
            if not hasattr(self, "best_"):
                raise AnytaskError("no sub-network chosen yet: call search(texts) or pass shape=")
            shape = self.best_
        if isinstance(shape, dict):
            shape = SubNet(**{k: int(shape[k]) for k in ("layers", "heads", "ffn")})
        model = self.superlm_.extract(shape)
        dense = None
        if align_steps:
            if texts is None:
                raise AnytaskError("align_steps needs texts= (unlabelled) to align on")
            dense = align_to_teacher(model, self.teacher_backbone_, list(texts), steps=align_steps, lr=align_lr,
                                     batch_size=batch_size or self.batch_size, max_length=self.max_length,
                                     seed=self.seed, progress=self.progress)
        aligned = f"aligned to the teacher's embeddings for {align_steps} steps" if align_steps else "not aligned"
        card = (f"# AutoDistil student of {self.teacher}\n\nSub-network {shape.as_dict()} of the {self.subspace!r} "
                f"SuperLM (Xu et al. 2022, arXiv:2201.12507), {self.steps} steps of relation distillation, seed "
                f"{self.seed}; {aligned}.\n\nLoad it with anytask as backbone `hf:<this folder>`.\n")
        return write_student(folder, model, self.teacher_folder_,
                             max_length=self.teacher_backbone_.config.max_length, card=card, dense=dense)

