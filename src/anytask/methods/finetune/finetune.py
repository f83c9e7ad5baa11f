"""Fine-tune a copy of a backbone on one task, standard or linearised, to make task vectors.

The classifier head is frozen and built from the *pre-trained* encoder's embeddings of the
label names, as task-arithmetic papers freeze CLIP's zero-shot head, so a task vector is the
whole difference a task made. Two modes:

* standard: all encoder weights train (AdamW), ``tau = theta_t - theta_0``;
* linearised (tangent task arithmetic, Ortiz-Jimenez et al. 2023,
  https://arxiv.org/abs/2305.12827, card 40): the model is its first-order Taylor expansion
  around the pre-trained weights, ``f_lin(x; theta) = f(x; theta_0) + J_theta f(x; theta_0)
  (theta - theta_0)``, computed with forward-mode autodiff (``anytask.backbones.trainable``); only ``theta - theta_0`` trains, so
  task vectors live in the tangent space. PyTorch's fused scaled-dot-product attention has
  no forward-mode derivative, so the encoder is loaded with the "eager" attention path.

The source folder and any loaded backbone are never modified: the encoder is a fresh copy
read from disk. The output is the source folder with ``model.safetensors`` replaced by
``theta_0 + tau`` (every key kept, so ``anytask merge`` and ``hf:`` loading work) plus
``finetune.json`` (mode, task, steps, the training curve). A linearised checkpoint must be
evaluated with :class:`Linearized` around its base (``finetune.json`` records it).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anytask.backbones.trainable import (LINEARIZED_MARKER, Linearized, hidden_states, input_embeddings, label_head,
                                         linearized_checkpoint, load_encoder, mean_pool, parameter_names,
                                         save_model_folder)
from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

FINETUNING: Registry = Registry("fine-tuning mode", family="finetune")


def finetune(folder: str | Path, texts: list[str], labels, label_names: list[str], out: str | Path, *,
             linearized: bool = False, steps: int = 100, lr: float = 2e-5, batch_size: int = 32,
             max_length: int = 64, logit_scale: float = 20.0, train_embeddings: bool = False,
             optimizer: str = "adamw", tram_target: str = "previous", noise_std: float = 0.1,
             rho: float | None = None, seed: int = 0, progress: bool = True, device: str = "auto") -> dict:
    """Train on (texts, labels) with labels indexing ``label_names``; write the checkpoint to ``out``.

    ``optimizer``: ``adamw``, or ``sam`` / ``asam`` / ``tram`` around AdamW (:mod:`anytask.methods.finetune.optim`;
    ``rho`` overrides SAM's 0.05 / ASAM's 0.5). TRAM's trust-region distance is the KL from
    ``tram_target``'s outputs on the batch to the current ones: ``previous`` (the model before
    the last step), ``initial`` (the pre-trained model) or ``noise`` (the current model with
    Gaussian noise of ``noise_std`` on the input embeddings; standard mode only). ``device``: where the copy
    trains (``auto``: a GPU when present); the checkpoint is written from the CPU either way."""
    from anytask.backbones.device import resolve_device
    from anytask.methods.finetune.optim import MODES, SharpnessAware, kl_divergence

    from safetensors.torch import load_file
    from tqdm.auto import tqdm

    labels = np.asarray(labels)
    if len(texts) != len(labels) or not len(texts):
        raise AnytaskError(f"{len(texts)} texts and {len(labels)} labels: pass one label per text, at least one")
    if labels.min() < 0 or labels.max() >= len(label_names):
        raise AnytaskError(f"labels must index label_names (0..{len(label_names) - 1}); got {labels.min()}..{labels.max()}")
    if optimizer not in ("adamw", *MODES):
        raise AnytaskError(f"unknown optimizer {optimizer!r}; use adamw, {', '.join(MODES)}")
    if optimizer == "tram" and tram_target not in ("previous", "initial", "noise"):
        raise AnytaskError(f"unknown tram_target {tram_target!r}; use previous, initial or noise")
    if optimizer == "tram" and tram_target == "noise" and linearized:
        raise AnytaskError("tram_target='noise' perturbs input embeddings: use it with standard fine-tuning")
    torch.manual_seed(seed)
    folder = Path(folder)
    encoder, tokenizer = load_encoder(folder)
    where = resolve_device(device)
    encoder = encoder.to(where)
    head = label_head(encoder, tokenizer, label_names)
    if linearized:
        model = Linearized(encoder, train_embeddings)
        params = list(model.delta)
    else:
        names = set(parameter_names(encoder, embeddings=train_embeddings))
        for n, p in encoder.named_parameters():
            p.requires_grad_(n in names)
        model = encoder
        params = [p for p in encoder.parameters() if p.requires_grad]
    if linearized:
        model.eval()  # the linear model is evaluated around fixed weights: no dropout
    else:
        model.train()
    if optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
    else:
        opt = SharpnessAware(params, torch.optim.AdamW, mode=optimizer, rho=rho, lr=lr, weight_decay=0.1)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    reference = {n: p.detach().clone() for n, p in trainable.items()}  # theta_0, or theta_{t-1} when updated

    def logits_of(enc, weights=None, noise=0.0):
        inputs = dict(enc)
        if noise:
            ids = inputs.pop("input_ids")
            embeds = input_embeddings(encoder, ids)
            inputs["inputs_embeds"] = embeds + noise * torch.randn_like(embeds)
        hidden = hidden_states(model, inputs, weights)
        return logit_scale * mean_pool(hidden, enc["attention_mask"], normalize=True) @ head.T

    gen = np.random.default_rng(seed)
    y_all = torch.as_tensor(labels, dtype=torch.long, device=where)
    history, start = [], time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc="linearised" if linearized else "fine-tune", disable=not progress):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, step / max(1, steps // 10)) * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = gen.choice(len(texts), size=min(batch_size, len(texts)), replace=False)
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        enc = {k: v.to(where) for k, v in enc.items()}
        logits = logits_of(enc)
        loss = F.cross_entropy(logits, y_all[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        row = {"step": step, "loss": round(loss.item(), 5)}
        if optimizer == "adamw":
            opt.step()
        else:
            distance = None
            if optimizer == "tram":
                with torch.no_grad():
                    target = logits_of(enc, noise=noise_std) if tram_target == "noise" else logits_of(enc, reference)
                    distance = kl_divergence(target, logits.detach())  # KL(reference || current)
                row["distance"] = round(float(distance), 6)
                if tram_target == "previous":
                    reference = {n: p.detach().clone() for n, p in trainable.items()}
            opt.first_step(opt.radius(distance))
            opt.zero_grad()
            F.cross_entropy(logits_of(enc), y_all[idx]).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.second_step()
        row["seconds"] = round(time.perf_counter() - start, 2)
        history.append(row)
    base_sd = load_file(str(folder / "model.safetensors"))
    if linearized:
        tau = {n: t.cpu() for n, t in model.task_vector().items()}
    else:
        trained = dict(encoder.named_parameters())
        tau = {n: (trained[n].detach().cpu() - base_sd[n]) for n in trained if n in base_sd}
    merged = {k: (v + tau[k].to(v.dtype) if k in tau else v) for k, v in base_sd.items()}
    info = {"source": str(folder), LINEARIZED_MARKER: linearized, "steps": steps, "lr": lr, "batch_size": batch_size,
            "max_length": max_length, "logit_scale": logit_scale, "train_embeddings": train_embeddings,
            "optimizer": optimizer, "tram_target": tram_target if optimizer == "tram" else None,
            "seed": seed, "label_names": list(label_names), "history": history}
    card = (f"# Fine-tuned by anytask ({'linearised' if linearized else 'standard'})\n\nSource: {folder}\n"
            f"Labels: {', '.join(map(str, label_names))}; {steps} steps, lr {lr}, optimizer {optimizer}.\n"
            + ("\nA linearised checkpoint: its weights are theta_0 + delta and only mean something through the "
               "linear model around the source; evaluate it with anytask.methods.finetune.predict.\n"
               if linearized else ""))
    save_model_folder(merged, folder, out, {"finetune.json": json.dumps(info, indent=1).encode()}, readme=card)
    return info


@torch.no_grad()
def predict(folder: str | Path, texts: list[str], label_names: list[str], *, base: str | Path | None = None,
            linearized: bool | None = None, batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """Label indices for ``texts`` from the checkpoint in ``folder`` with the frozen label head of
    ``base`` (default: the checkpoint's own source). A linearised checkpoint is evaluated as
    ``f(base) + J (theta - theta_base)``; ``linearized=None`` reads it from the checkpoint's finetune.json."""
    folder = Path(folder)
    if linearized is None:
        linearized = linearized_checkpoint(folder)
    elif not linearized and linearized_checkpoint(folder):
        raise AnytaskError(f"{folder} is a linearised checkpoint; evaluating it as a plain model gives wrong "
                           "answers: pass linearized=True (or leave it out)")
    info_path = folder / "finetune.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    base = Path(base or info.get("source") or folder)
    base_encoder, tokenizer = load_encoder(base)
    head = label_head(base_encoder, tokenizer, label_names)
    if linearized:
        from safetensors.torch import load_file

        model = Linearized(base_encoder, train_embeddings=True)
        tuned = load_file(str(folder / "model.safetensors"))
        for n, d in zip(model.names, model.delta):
            d.copy_(tuned[n] - model.base[n])
        run = model
    else:
        encoder, _ = load_encoder(folder)
        encoder.eval()

        def run(**enc):
            return hidden_states(encoder, enc)
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        out.append((mean_pool(run(**enc), enc["attention_mask"], normalize=True) @ head.T).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


@FINETUNING.register("standard", reference="task vectors, Ilharco et al. 2023, https://arxiv.org/abs/2212.04089",
                     input="texts", output="weights",
                     summary="fine-tune a fresh copy of the encoder; tau = theta_t - theta_0 for anytask merge")
def finetune_standard(folder, texts, labels, label_names, out, **kwargs) -> dict:
    return finetune(folder, texts, labels, label_names, out, linearized=False, **kwargs)


@FINETUNING.register("linearized", reference="tangent task arithmetic, Ortiz-Jimenez et al. 2023, "
                     "https://arxiv.org/abs/2305.12827", input="texts", output="weights",
                     summary="fine-tune the first-order Taylor model (a JVP): task vectors in the tangent space")
def finetune_linearized(folder, texts, labels, label_names, out, **kwargs) -> dict:
    return finetune(folder, texts, labels, label_names, out, linearized=True, **kwargs)
