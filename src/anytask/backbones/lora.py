"""LoRA adapters on a *copy* of a frozen causal LM (PEFT), for multitask prompted fine-tuning.

The shared backbone is never touched: ``LoRACopy`` deep-copies the transformers model, lets PEFT
inject low-rank adapters into the copy's attention projections (Hu et al. 2021, LoRA,
https://arxiv.org/abs/2106.09685), and trains only those. ``target_loss`` is the BLOOMZ loss: the
negative log-likelihood of the target tokens only (never the prompt), averaged per target first so
short and long answers weigh the same (``--norm-target-loss``). The adapter saves as a PEFT folder;
``merged()`` gives a new frozen ``CausalLM`` with the adapter folded in, which every LM method uses
like any backbone.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from anytask.backbones.causal import LM_INSTALL, CausalLM, _require, pad_right
from anytask.core.errors import AnytaskError


class LoRACopy:
    def __init__(self, lm: CausalLM, *, rank: int = 8, alpha: int = 16, dropout: float = 0.0,
                 targets: tuple[str, ...] = ("q_proj", "v_proj"), seed: int = 0) -> None:
        _require("peft")
        from peft import LoraConfig, get_peft_model

        if rank < 1:
            raise AnytaskError(f"LoRA rank {rank}: give at least 1")
        self.lm = lm
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = copy.deepcopy(lm.model)
            config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                                task_type="CAUSAL_LM")
            self.model = get_peft_model(model, config)
        except ValueError as e:
            raise AnytaskError(f"cannot add LoRA to {lm.config.name}: {e}; check `targets` ({LM_INSTALL})") from e
        finally:
            torch.random.set_rng_state(state)
        self.model.train()

    def parameters(self) -> list[Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def target_loss(self, rows: list[tuple[list[int], list[int]]]) -> Tensor:
        """Mean over rows of the mean NLL of each row's target tokens given its prompt (right padding)."""
        if any(not p or not t for p, t in rows):
            raise AnytaskError("every training row needs a prompt and a non-empty target")
        seqs = [p + t for p, t in rows]
        ids, mask = pad_right(seqs, self.lm.pad_id)
        weight = torch.zeros(len(seqs), ids.shape[1] - 1)
        for i, (p, t) in enumerate(rows):
            weight[i, len(p) - 1 : len(p) + len(t) - 1] = 1.0 / len(t)  # target tokens only, each target sums to 1
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        return (nll.view(len(seqs), -1) * weight).sum() / len(seqs)

    def save_adapter(self, folder: str | Path) -> Path:
        """The adapter as a PEFT folder, written beside ``folder`` first and moved into place whole (an
        existing folder is an error: nothing is overwritten)."""
        folder = Path(folder)
        if folder.exists():
            raise AnytaskError(f"{folder} already exists; choose a new folder for the adapter")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        try:
            self.model.save_pretrained(tmp)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def merged(self, name: str) -> CausalLM:
        """A new frozen CausalLM: the copy with the adapter folded into its weights."""
        model = copy.deepcopy(self.model).merge_and_unload()
        return CausalLM(model, self.lm.tokenizer, name=name, reference=f"{self.lm.config.name} + LoRA adapter",
                        pooling=self.lm.config.pooling, source_hash=self.lm.source_hash)
