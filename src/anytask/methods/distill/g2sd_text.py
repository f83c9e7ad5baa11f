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
states of masked text here, the pooled sentence embedding there. What is not here: the specific stage (a
distillation token on one task) — anytask's heads read the frozen student, so the frontier measures the generic
student, which is the part G2SD calls task-agnostic.

    g = DISTILLERS.get("g2sd_text")(layers=3, steps=600).fit(unlabelled_texts)
    g.save_student("minilm-g2sd")          # then backbone "hf:minilm-g2sd"
"""

from __future__ import annotations

from anytask.core.errors import AnytaskError
from anytask.methods.distill.base import DISTILLERS
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
