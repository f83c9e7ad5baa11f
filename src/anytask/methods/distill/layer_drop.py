"""A shallower copy of the teacher: some of its layers kept at full width, then aligned to its sentence embeddings.

Not one of the papers: the strongest *simple* student, the baseline a searched or distilled student has to beat.
It is DistilBERT's initialisation (Sanh et al. 2019, https://arxiv.org/abs/1910.01108: the student takes one layer
in two from the teacher) followed by the embedding-matching distillation sentence-transformers uses to shrink a
sentence encoder by dropping layers (Reimers & Gurevych 2020, https://arxiv.org/abs/2004.09813): the student is
trained so that its mean-pooled embedding of a text matches the frozen teacher's (1 - cosine, the loss the
project's other students are aligned with).

Which layers to keep is chosen without labels: every increasing choice of ``layers`` of the teacher's layers
is scored by the mean cosine between its embeddings and the teacher's on ``held_out`` unlabelled texts kept out
of training, before any training, and the best is trained (``keep=`` fixes it instead). ``held_out_cosine_``
gives the score after training too.

``init=<student folder>`` trains a student already made (a layer-drop or G2SD text student of the same teacher)
further instead of choosing layers: longer training in two runs, or sentence alignment after G2SD's token-state
distillation. With the same corpus and seed the held-out texts are the ones the first run held out. The
optimiser starts afresh.

    ld = DISTILLERS.get("layer_drop")(layers=3, steps=1500).fit(unlabelled_texts)
    ld.save_student("minilm-l3")        # then backbone "hf:minilm-l3"
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from anytask.core.errors import AnytaskError
from anytask.methods.distill.base import DISTILLERS, check_student, write_student


@DISTILLERS.register("layer_drop", reference="Sanh et al. 2019, https://arxiv.org/abs/1910.01108; Reimers & Gurevych "
                     "2020, https://arxiv.org/abs/2004.09813", input="texts", output="backbone",
                     summary="the teacher's best few layers at full width (chosen by held-out cosine, no labels), "
                     "aligned to its sentence embeddings: the simple student")
class LayerDrop(BaseEstimator):
    def __init__(self, teacher: str = "minilm", layers: int | None = None, keep=None, steps: int = 1500,
                 batch_size: int = 32, max_length: int = 128, lr: float = 1e-4, held_out: int = 512,
                 seed: int = 0, progress: bool = True, init=None) -> None:
        self.teacher = teacher
        self.layers = layers
        self.keep = keep
        self.init = init
        self.steps = steps
        self.batch_size = batch_size
        self.max_length = max_length
        self.lr = lr
        self.held_out = held_out
        self.seed = seed
        self.progress = progress

    def _embed(self, model, texts: list[str]) -> np.ndarray:
        from anytask.backbones.superlm import mean_pooled

        return mean_pooled(model, self.teacher_.tokenizer, texts, max_length=self.max_length).numpy()

    def _cosine(self, model, texts: list[str], target: np.ndarray) -> float:
        return float((self._embed(model, texts) * target).sum(1).mean())

    def fit(self, X, y=None) -> "LayerDrop":
        """Choose the layers on held-out texts of ``X`` (unlabelled; ``y`` is ignored) and align the student on
        the rest."""
        from anytask.backbones import create_backbone, state_hash
        from anytask.backbones.superlm import SuperLM
        from anytask.core.validation import check_texts
        from anytask.methods.distill.autodistil import teacher_folder

        texts = check_texts(X)
        folder = teacher_folder(self.teacher)
        superlm = SuperLM(folder)
        depth = superlm.n_layers
        if self.init is not None and self.keep is not None:
            raise AnytaskError("give keep= (layers of the teacher) or init= (a student to train further), not both")
        n = (depth + 1) // 2 if self.layers is None else int(self.layers)
        if self.keep is None and not 1 <= n <= depth:
            raise AnytaskError(f"layers={self.layers!r}: the teacher has {depth} layers; keep 1..{depth}")
        held = min(self.held_out, len(texts) // 4) if self.keep is None else 0  # init: the first run's split
        if len(texts) - held < self.batch_size:
            raise AnytaskError(f"{len(texts)} texts: too few to hold {held} out and train on batches of "
                               f"{self.batch_size}; add texts or lower held_out / batch_size")
        order = np.random.default_rng(self.seed).permutation(len(texts))
        held_texts, train = [texts[i] for i in order[:held]], [texts[i] for i in order[held:]]
        self.teacher_folder_ = folder
        self.teacher_ = create_backbone("minilm" if self.teacher == "minilm" else f"hf:{folder}")
        before = state_hash(self.teacher_)
        # the teacher's embeddings of the held-out texts, read exactly as the students' are
        target = self._embed(superlm.extract(superlm.largest), held_texts) if held_texts else None
        if self.init is not None:
            start = self._init_model(superlm)
            keep = list(range(start.config.num_hidden_layers))
            self.candidates_ = []
        elif self.keep is not None:
            keep = [int(i) for i in self.keep]
            self.candidates_ = []
        else:
            scored = [(self._cosine(superlm.extract_layers(c), held_texts, target), list(c))
                      for c in combinations(range(depth), n)]
            scored.sort(key=lambda t: -t[0])
            self.candidates_ = [{"keep": c, "held_out_cosine": round(cos, 5)} for cos, c in scored]
            keep = scored[0][1]
        model = start if self.init is not None else superlm.extract_layers(keep)
        del superlm
        if self.steps:
            self._train(model, train)
        if state_hash(self.teacher_) != before:
            raise AnytaskError("internal error: the teacher changed during distillation")
        self.keep_, self.model_ = keep, model
        if target is not None:
            self.held_out_cosine_ = self._cosine(model, held_texts, target)
        return self

    def _init_model(self, teacher: "SuperLM"):  # noqa: F821 - anytask.backbones.superlm
        """The student of ``init`` as a trainable encoder; it must share the teacher's width and vocabulary."""
        from anytask.backbones.superlm import SuperLM

        folder = check_student(self.init, option="init")
        if (folder / "2_Dense").exists():
            raise AnytaskError(f"{folder} projects its embeddings (a Dense layer): only full-width students "
                               "(layer_drop, g2sd_text) can be trained further")
        student = SuperLM(folder)
        if student.config.get("hidden_size") != teacher.config.get("hidden_size") or \
                student.config.get("vocab_size") != teacher.config.get("vocab_size"):
            raise AnytaskError(f"{folder} has another width or vocabulary than the teacher {self.teacher}; train a "
                               "student of this teacher further")
        return student.extract_layers(range(student.n_layers))

    def _train(self, model, texts: list[str]) -> None:
        """Align the student's sentence embeddings to the teacher's (1 - cosine), in place."""
        from anytask.backbones.superlm import align_to_teacher

        align_to_teacher(model, self.teacher_, texts, steps=self.steps, lr=self.lr, batch_size=self.batch_size,
                         max_length=self.max_length, seed=self.seed, progress=self.progress, project=False)

    def _start(self) -> str:
        return (f"The student of {self.init}, trained further:" if self.init is not None
                else f"The teacher's layers {self.keep_} at full width,")

    def _card(self) -> str:
        return (f"{self._start()} aligned to its sentence embeddings for {self.steps} steps (lr {self.lr}, seed "
                f"{self.seed}).")

    def save_student(self, folder) -> Path:
        """Write the student as a sentence-transformers folder (``hf:<folder>``), atomically."""
        if not hasattr(self, "model_"):
            raise AnytaskError(f"this {type(self).__name__} is not fitted yet; call fit(texts) first")
        card = (f"# {len(self.keep_)}-layer student of {self.teacher}\n\n{self._card()}\n\n"
                "Load it with anytask as backbone `hf:<this folder>`.\n")
        return write_student(folder, self.model_, self.teacher_folder_, max_length=self.teacher_.config.max_length,
                             card=card)
