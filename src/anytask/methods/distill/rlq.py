"""RLQ's task-agnostic distillation, text analogue (Pathak & Rawat 2025, "Coarse Attribute Prediction with
Task Agnostic Distillation for Real World Clothes Changing ReID", https://arxiv.org/abs/2505.12580; card 11).

RLQ closes the gap between the features of high- and low-quality inputs by distilling, on an external
unlabelled set, from a frozen teacher that sees the clean input into a student that sees a degraded copy. Here
the inputs are texts and the degradations typos, stray characters and broken casing
(``anytask.data.noise.degrade``): a copy of the teacher is trained so that its embedding of a degraded text
matches the frozen teacher's embedding of the clean one (1 - cosine), plus the same loss on the clean text so
clean inputs keep their embeddings (the teacher is never trained: no collapse). The result is a backbone
folder (``hf:<folder>``) to use where inputs are messy; heads trained on clean examples then read noisy queries
closer to where the clean ones would be. RLQ's other half, coarse attribute prediction (pose clusters, gender
for person re-identification), has no text counterpart here and is not implemented.

    rlq = DISTILLERS.get("rlq")(steps=300, noise="mixed", rate=0.1).fit(unlabelled_texts)
    rlq.save_student("minilm-robust")          # then backbone "hf:minilm-robust"
"""

from __future__ import annotations

from pathlib import Path

from sklearn.base import BaseEstimator

from anytask.core.errors import AnytaskError
from anytask.methods.distill.base import DISTILLERS, write_student


@DISTILLERS.register("rlq", reference="Pathak & Rawat 2025, https://arxiv.org/abs/2505.12580", input="texts",
                     output="backbone", summary="noise-robust copy of the teacher: degraded texts distilled onto "
                     "the frozen teacher's clean embeddings (RLQ's task-agnostic distillation, text analogue)")
class RLQ(BaseEstimator):
    def __init__(self, teacher: str = "minilm", noise: str = "mixed", rate: float = 0.1, steps: int = 300,
                 batch_size: int = 32, max_length: int = 64, lr: float = 2e-5, clean_weight: float = 1.0,
                 seed: int = 0, progress: bool = True) -> None:
        self.teacher = teacher
        self.noise = noise
        self.rate = rate
        self.steps = steps
        self.batch_size = batch_size
        self.max_length = max_length
        self.lr = lr
        self.clean_weight = clean_weight
        self.seed = seed
        self.progress = progress

    def fit(self, X, y=None) -> "RLQ":
        """Train the robust copy on unlabelled texts ``X`` (``y`` is ignored)."""
        from anytask.backbones import create_backbone, state_hash
        from anytask.backbones.superlm import SuperLM, align_to_teacher
        from anytask.core.validation import check_texts
        from anytask.data.noise import degrade
        from anytask.methods.distill.autodistil import teacher_folder

        texts = check_texts(X)
        degrade([], self.noise, self.rate)  # bad settings fail before any work
        folder = teacher_folder(self.teacher)
        self.teacher_folder_ = folder
        teacher = create_backbone("minilm" if self.teacher == "minilm" else f"hf:{folder}")
        self.teacher_max_length_ = teacher.config.max_length
        before = state_hash(teacher)
        superlm = SuperLM(folder)
        model = superlm.extract(superlm.largest)  # a copy of the teacher's encoder
        del superlm
        align_to_teacher(model, teacher, texts, steps=self.steps, lr=self.lr, batch_size=self.batch_size,
                         max_length=self.max_length, seed=self.seed, progress=self.progress,
                         degrade=lambda batch, seed: degrade(batch, self.noise, self.rate, seed),
                         clean_weight=self.clean_weight, project=False)
        if state_hash(teacher) != before:
            raise AnytaskError("internal error: the teacher changed during distillation")
        self.model_ = model
        return self

    def save_student(self, folder) -> Path:
        """Write the robust copy as a sentence-transformers folder (``hf:<folder>``), atomically."""
        if not hasattr(self, "model_"):
            raise AnytaskError("this RLQ is not fitted yet; call fit(texts) first")
        card = (f"# RLQ-style noise-robust copy of {self.teacher}\n\nTrained {self.steps} steps on {self.noise!r} "
                f"degradations at rate {self.rate} (Pathak & Rawat 2025, arXiv:2505.12580, task-agnostic "
                f"distillation, text analogue), seed {self.seed}.\n\nLoad it with anytask as backbone "
                "`hf:<this folder>`.\n")
        return write_student(folder, self.model_, self.teacher_folder_, max_length=self.teacher_max_length_,
                             card=card)

