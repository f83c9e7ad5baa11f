"""Multitask prompted fine-tuning (MTF) with LoRA, on instructions, for zero-shot transfer to held-out
task clusters.

Muennighoff et al. 2023, Crosslingual Generalization through Multitask Finetuning (BLOOMZ / mT0),
https://arxiv.org/abs/2211.01786 (card 42), with the instruction schema of Mishra et al. 2022,
https://arxiv.org/abs/2104.08773 (card 32).

``training_rows`` turns labelled texts of *seen* tasks into (prompt, answer) pairs: the prompt is
the task's instruction (``instructions.TASKS``; ``fields=()`` for the input alone) and the answer
its label word. ``multitask_finetune`` trains LoRA adapters on a copy of the frozen LM
(``backbones.lora.LoRACopy``) with the loss on answer tokens only, normalised per answer, Adam at a
constant rate (BLOOMZ's recipe for small models: constant lr, no warm-up, gradient clipping at 1).
Evaluation is zero-shot rank classification on *held-out* clusters: ``LMPromptHead(k=0)`` with the
instruction as template over the merged copy (``LoRACopy.merged``, shared under a name).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.methods.lm.instructions import FIELDS, TASKS, answers_for


def template(task: str, fields: tuple = FIELDS) -> str:
    """The ``LMPromptHead`` template of a task: its encoded instruction around ``{text}``."""
    if task not in TASKS:
        raise AnytaskError(f"no instruction for task {task!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[task].encode("{text}", fields)


def training_rows(tasks: dict, *, fields: tuple = FIELDS, max_chars: int = 300) -> list[tuple[str, str]]:
    """(prompt, answer) pairs from ``{task: (texts, labels)}`` (texts cut at ``max_chars``)."""
    rows = []
    for task, (texts, labels) in tasks.items():
        answers = answers_for(task, sorted({str(v) for v in labels}))
        for text, label in zip(texts, labels):
            text = text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0]
            rows.append((TASKS[task].encode(text, fields), answers[str(label)]))
    return rows


def multitask_finetune(lm, rows: list[tuple[str, str]], *, steps: int = 60, batch_size: int = 4, lr: float = 5e-4,
                       rank: int = 8, alpha: int = 16, seed: int = 0, progress: bool = False):
    """LoRA on a copy of ``lm`` trained on the pairs; returns (the LoRACopy, the loss of every step)."""
    from anytask.backbones.lora import LoRACopy

    if len(rows) < 2:
        raise AnytaskError(f"multitask fine-tuning needs training pairs; got {len(rows)}")
    copy = LoRACopy(lm, rank=rank, alpha=alpha, seed=seed)
    encoded = [(lm.encode(p, start=True), lm.encode(a)) for p, a in rows]
    opt = torch.optim.Adam(copy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(encoded)) for _ in range(steps * batch_size // len(encoded) + 1)])
    losses = []
    for step in tqdm(range(steps), desc="multitask fine-tuning", disable=not progress):
        batch = [encoded[i] for i in order[step * batch_size : (step + 1) * batch_size]]
        loss = copy.target_loss(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(copy.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
    copy.model.eval()
    return copy, losses
