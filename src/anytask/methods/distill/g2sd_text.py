"""G2SD's generic distillation, text variant (Huang et al. 2023, "Generic-to-Specific Distillation of Masked
Autoencoders", https://arxiv.org/abs/2302.14771; card 07), with MiniLM as the frozen teacher.

G2SD first distils a masked autoencoder *generically*: teacher and student see the same masked input and the
student regresses the teacher's hidden states on every token, so the student learns what the teacher computes
rather than one task's answers; a task-specific distillation comes after, per task. For a text encoder the
masked input is the text with ``mask_ratio`` of its tokens replaced by [MASK], and the targets are the teacher's
last-layer token states (LayerNorm'ed, smooth-L1 with beta 2 as in the paper; ``supervise_all=False`` supervises
the masked tokens only, the paper's ablation).

The student starts as the layer-drop student does (``layer_drop.py``: the teacher's best ``layers`` layers at full
width, chosen by held-out cosine without labels), so the two differ only in what they are distilled on: token
states of masked text here, the pooled sentence embedding there. anytask's heads read the frozen
student, so the frontier measures this generic student, the part G2SD calls task-agnostic.

The specific stage is ``G2SDTextClassifier`` (``TASK_DISTILLERS``, ``"g2sd_text"``): a copy of a student
fine-tuned on one task, DeiT-style. The teacher is the frozen teacher backbone with a linear probe fitted on the
task's labelled rows; the student reads one extra learned input (the distillation token, after [CLS]); a class
head on its mean-pooled text tokens learns the labels, a distillation head on the token's state learns the
teacher's hard predictions (argmax), each half of the loss (the paper's recipe). Unlabelled texts of the task
(``unlabelled=``) get the teacher's predictions only: that is where a teacher adds to the labels. Prediction
averages the two heads' probabilities. The shipped student is read, never changed.

    g = DISTILLERS.get("g2sd_text")(layers=3, steps=600).fit(unlabelled_texts)
    g.save_student("minilm-g2sd")          # then backbone "hf:minilm-g2sd"
    clf = TASK_DISTILLERS.get("g2sd_text")(student="minilm-g2sd", unlabelled=task_texts).fit(X, y)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.methods.distill.base import DISTILLERS, TASK_DISTILLERS, check_student
from anytask.methods.distill.layer_drop import LayerDrop


@DISTILLERS.register("g2sd_text", reference="Huang et al. 2023, https://arxiv.org/abs/2302.14771", input="texts",
                     output="backbone", summary="G2SD's generic distillation for text: a shallower copy of the "
                     "teacher regresses its token states on masked text")
class G2SDText(LayerDrop):
    def __init__(self, teacher: str = "minilm", layers: int | None = None, keep=None, steps: int = 600,
                 batch_size: int = 32, max_length: int = 128, lr: float = 1e-4, held_out: int = 512,
                 mask_ratio: float = 0.3, supervise_all: bool = True, seed: int = 0, progress: bool = True,
                 init=None) -> None:
        super().__init__(teacher=teacher, layers=layers, keep=keep, steps=steps, batch_size=batch_size,
                         max_length=max_length, lr=lr, held_out=held_out, seed=seed, progress=progress, init=init)
        self.mask_ratio = mask_ratio
        self.supervise_all = supervise_all

    def fit(self, X, y=None) -> "G2SDText":
        if not 0 < self.mask_ratio < 1:
            raise AnytaskError(f"mask_ratio={self.mask_ratio!r}: give a fraction of the tokens in (0, 1)")
        return super().fit(X, y)

    def _train(self, model, texts: list[str]) -> None:
        from anytask.backbones.superlm import distill_token_states

        self.loss_curve_ = distill_token_states(
            model, self.teacher_, texts, steps=self.steps, mask_ratio=self.mask_ratio,
            supervise_all=self.supervise_all, lr=self.lr, batch_size=self.batch_size, max_length=self.max_length,
            seed=self.seed, progress=self.progress)

    def _card(self) -> str:
        return (f"{self._start()} distilled for {self.steps} steps on the teacher's "
                f"token states of masked text (G2SD's generic distillation; {self.mask_ratio:.0%} of tokens masked, "
                f"{'every token' if self.supervise_all else 'masked tokens only'} supervised; lr {self.lr}, seed "
                f"{self.seed}).")


@TASK_DISTILLERS.register("g2sd_text", reference="Huang et al. 2023, https://arxiv.org/abs/2302.14771; Touvron et al. "
                          "2021 (DeiT), https://arxiv.org/abs/2012.12877", input="texts", output="classifier",
                          summary="G2SD's specific stage for text: a student fine-tuned on one task with a class head "
                          "and a distillation-token head taught by the teacher's linear probe")
class G2SDTextClassifier(BaseEstimator, ClassifierMixin, Pretrained):
    """``student``: a student folder (``hf:`` optional) or ``None`` for no student (an error); ``teacher``: a
    backbone name. ``distill=False`` fine-tunes on the labels alone (no teacher, no token): the ablation.

    ``save_pretrained(folder)`` / ``G2SDTextClassifier.from_pretrained(folder)`` (or ``anytask.core.io``): one
    self-contained folder — the fine-tuned student with its config and tokenizer, the token and both heads — that
    predicts without the student folder or the teacher. The unlabelled texts are not saved (their count is)."""

    def __init__(self, student=None, teacher: str = "minilm", unlabelled=None, steps: int = 200,
                 batch_size: int = 32, lr: float = 1e-4, head_lr: float = 1e-3, max_length: int = 128,
                 distill: bool = True, seed: int = 0, progress: bool = True) -> None:
        self.student = student
        self.teacher = teacher
        self.unlabelled = unlabelled
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.max_length = max_length
        self.distill = distill
        self.seed = seed
        self.progress = progress

    def _teacher_labels(self, X: list[str], y: np.ndarray, texts: list[str]) -> np.ndarray:
        """The teacher's hard predictions (class indices) on ``texts``, from its linear probe fitted on ``(X, y)``
        (the teacher backbone's embeddings, cached as every head's are)."""
        from anytask.backbones import get_embedder
        from anytask.methods.heads import HEADS

        embedder = get_embedder(self.teacher)
        self.teacher_probe_ = HEADS.get("linear_probe")().fit(embedder.embed(X), y)
        return np.searchsorted(self.classes_, np.asarray(self.teacher_probe_.predict(embedder.embed(texts))))

    def fit(self, X, y) -> "G2SDTextClassifier":
        import torch
        from torch import nn
        from tqdm.auto import tqdm

        from anytask.backbones.trainable import input_embeddings, load_encoder
        from anytask.core.validation import check_texts

        X = check_texts(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise AnytaskError(f"{len(X)} texts but {len(y)} labels; give one label per text")
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise AnytaskError("fit needs at least two classes")
        if self.student is None:
            raise AnytaskError("give student=<folder> (a student `anytask distill` wrote)")
        folder = check_student(self.student)
        if self.steps < 1 or self.batch_size < 2:
            raise AnytaskError(f"steps={self.steps!r}, batch_size={self.batch_size!r}: give steps >= 1 and "
                               "batch_size >= 2")
        given = self.distill and self.unlabelled is not None and len(self.unlabelled)
        U = check_texts(self.unlabelled) if given else []  # without a teacher, unlabelled texts teach nothing
        texts = X + U
        targets = torch.as_tensor(np.concatenate([yi, np.full(len(U), -100)]))  # U: no label
        teacher = torch.as_tensor(self._teacher_labels(X, y, texts)) if self.distill else None
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        encoder, self.tokenizer_ = load_encoder(folder)
        encoder.train(False)  # no dropout: few rows, few steps
        width, k = encoder.config.hidden_size, len(self.classes_)
        cls = torch.tensor([[self.tokenizer_.cls_token_id]])
        self.token_ = nn.Parameter(input_embeddings(encoder, cls)[0, 0].detach().clone())  # starts as [CLS]
        self.head_, self.dist_head_ = nn.Linear(width, k), nn.Linear(width, k)
        heads = [self.token_, *self.head_.parameters(), *self.dist_head_.parameters()]
        opt = torch.optim.AdamW([{"params": list(encoder.parameters()), "lr": self.lr},
                                 {"params": heads, "lr": self.head_lr}], weight_decay=0.01)
        ce = nn.CrossEntropyLoss(ignore_index=-100)
        half = self.batch_size // 2 if U else self.batch_size
        self.loss_curve_ = []
        for _ in tqdm(range(self.steps), desc="g2sd specific", unit="step", disable=not self.progress):
            idx = torch.randint(len(X), (half,), generator=gen)
            if U:
                idx = torch.cat([idx, len(X) + torch.randint(len(U), (self.batch_size - half,), generator=gen)])
            a, d = self._logits(encoder, [texts[i] for i in idx.tolist()])
            loss = 0.5 * ce(a, targets[idx]) + 0.5 * nn.functional.cross_entropy(d, teacher[idx]) if self.distill \
                else ce(a, targets[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            self.loss_curve_.append(float(loss.detach()))
        for p in [*encoder.parameters(), *heads]:
            p.requires_grad_(False)
        self.encoder_ = encoder
        return self

    def _logits(self, encoder, texts: list[str]):
        from anytask.backbones.trainable import hidden_states, mean_pool, states_with_token

        inputs = dict(self.tokenizer_(texts, padding=True, truncation=True, max_length=self.max_length,
                                      return_tensors="pt"))
        if not self.distill:
            states = hidden_states(encoder, inputs)
            return self.head_(mean_pool(states, inputs["attention_mask"])), None
        states, own = states_with_token(encoder, inputs, self.token_)
        return self.head_(mean_pool(states, own)), self.dist_head_(states[:, 1])

    def predict_proba(self, X) -> np.ndarray:
        import torch

        from anytask.core.validation import check_texts

        if not hasattr(self, "encoder_"):
            raise AnytaskError("this G2SDTextClassifier is not fitted yet; call fit(texts, labels) first")
        X = check_texts(X)
        out = []
        with torch.no_grad():
            for i in range(0, len(X), 64):
                a, d = self._logits(self.encoder_, X[i:i + 64])
                p = a.softmax(-1) if d is None else (a.softmax(-1) + d.softmax(-1)) / 2
                out.append(p.numpy())
        return np.concatenate(out)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks the fit first
        return self.classes_[proba.argmax(1)]

    # -- persistence (anytask.core.io) -----------------------------------------------------------------------
    def _saved_params(self) -> dict:
        params = self.get_params(deep=False)
        params["unlabelled"] = None  # training data, not a setting: it can be thousands of texts
        params["student"] = None if self.student is None else str(self.student)
        return params

    def _get_state(self):
        import torch

        from anytask.backbones.trainable import encoder_tensors

        if not hasattr(self, "encoder_"):
            raise AnytaskError("this G2SDTextClassifier is not fitted yet; call fit(texts, labels) before saving")
        tensors = encoder_tensors(self.encoder_, self.tokenizer_)
        for name, head in (("head", self.head_), ("dist_head", self.dist_head_)):
            tensors.update({f"{name}.{k}": v.detach().clone() for k, v in head.state_dict().items()})
        if self.distill:
            tensors["token"] = torch.as_tensor(self.token_).detach().clone()
        n_unlabelled = 0 if self.unlabelled is None else len(self.unlabelled)
        extra = {"classes": self.classes_.tolist(), "loss_curve": list(self.loss_curve_),
                 "n_unlabelled": n_unlabelled}
        return extra, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "G2SDTextClassifier":
        from torch import nn

        from anytask.backbones.trainable import encoder_from_tensors

        clf = cls(**params)
        classes = extra["classes"]
        clf.classes_ = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else None)
        clf.encoder_, clf.tokenizer_ = encoder_from_tensors(tensors)
        heads = []
        for name in ("head", "dist_head"):
            weight = tensors[f"{name}.weight"]
            head = nn.Linear(weight.shape[1], weight.shape[0])
            head.load_state_dict({"weight": weight, "bias": tensors[f"{name}.bias"]})
            head.requires_grad_(False)
            heads.append(head)
        if heads[0].out_features != len(clf.classes_):
            raise AnytaskError(f"the saved head has {heads[0].out_features} outputs for {len(clf.classes_)} classes; "
                               "save the model again")
        clf.head_, clf.dist_head_ = heads
        clf.token_ = tensors["token"] if clf.distill else None
        clf.loss_curve_ = list(extra.get("loss_curve", []))
        return clf
