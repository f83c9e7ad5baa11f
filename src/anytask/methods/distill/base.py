"""Shared pieces of the distillation family: the registry, the unlabelled corpus, and writing a student as a
sentence-transformers folder (transformers BERT + mean pooling [+ Dense] + Normalize) that ``hf:<folder>`` and
sentence-transformers load unchanged, written atomically so an interrupted save leaves the previous student."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

DISTILLERS: Registry = Registry("distiller", family="distill")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def corpus_texts(sources: Iterable[str], *, data_root=None, limit: int | None = None, seed: int = 0) -> list[str]:
    """Unlabelled texts: each source is a task folder name under ``data_root`` (its train split's texts), a
    ``.jsonl`` file (its ``"text"`` field) or a ``.txt`` file (one text per line); duplicates and empty texts
    dropped, shuffled with ``seed``, at most ``limit``."""
    from anytask.data import load_dataset

    texts: list[str] = []
    for source in sources:
        path = Path(source)
        if path.suffix == ".txt" and path.is_file():
            texts += path.read_text(encoding="utf-8").splitlines()
        elif path.suffix == ".jsonl" and path.is_file():
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if line.strip():
                    row = json.loads(line)
                    if "text" not in row:
                        raise AnytaskError(f"{path}: line {i + 1} has no \"text\" field")
                    texts.append(str(row["text"]))
        else:
            train, _ = load_dataset(source, data_root=data_root)
            if not train.is_text:
                raise AnytaskError(f"corpus source {source!r} is not a text task")
            texts += [str(t) for t in train.X]
    texts = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
    if not texts:
        raise AnytaskError("the distillation corpus is empty; pass task names, .jsonl or .txt files with texts")
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = [texts[i] for i in order]
    return texts[:limit] if limit else texts


def write_student(folder, model, teacher_folder, *, max_length: int, card: str, dense=None) -> Path:
    """Save ``model`` (a transformers encoder) as a sentence-transformers folder at ``folder``, atomically:
    the teacher's tokenizer files, mean pooling, an optional Dense layer (``nn.Linear``, identity activation)
    and Normalize."""
    import tempfile

    from safetensors.torch import save_file

    from anytask.core.io import write_folder_atomic

    teacher_folder = Path(teacher_folder)
    files: dict[str, bytes | Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("config.json", "model.safetensors"):
            files[name] = (Path(tmp) / name).read_bytes()
    for name in TOKENIZER_FILES:
        if (teacher_folder / name).is_file():
            files[name] = teacher_folder / name
    dim = int(model.config.hidden_size)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    files["1_Pooling/config.json"] = json.dumps({"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True,
                                                 "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
                                                 "pooling_mode_mean_sqrt_len_tokens": False}).encode()
    if dense is not None:
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        files["2_Dense/config.json"] = json.dumps({"in_features": dense.in_features, "out_features": dense.out_features,
                                                   "bias": dense.bias is not None,
                                                   "activation_function": "torch.nn.modules.linear.Identity"}).encode()
        state = {"linear.weight": dense.weight.detach().contiguous()}
        if dense.bias is not None:
            state["linear.bias"] = dense.bias.detach().contiguous()
        with tempfile.TemporaryDirectory() as tmp:
            save_file(state, str(Path(tmp) / "w.safetensors"))
            files["2_Dense/model.safetensors"] = (Path(tmp) / "w.safetensors").read_bytes()
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
    files["modules.json"] = json.dumps(modules, indent=1).encode()
    files["sentence_bert_config.json"] = json.dumps({"max_seq_length": int(max_length),
                                                     "do_lower_case": False}).encode()
    files["README.md"] = card.encode()
    return write_folder_atomic(folder, files)


def check_student(folder, *, option: str = "student") -> Path:
    """``folder`` (``hf:`` optional), checked to hold a model's config and weights: what a student of
    ``anytask distill`` — or any plain transformers BERT folder — has; the error names the option, the folder and
    the missing file."""
    folder = Path(str(folder).removeprefix("hf:"))
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise AnytaskError(f"{option}={str(folder)!r} is not a student folder (no {name}); give a folder "
                               "`anytask distill` wrote")
    return folder


TASK_DISTILLERS: Registry = Registry("task distiller", family="distill")
"""Task-specific distillation: a classifier over raw texts whose encoder (a student) is trained on one task's
labels and a frozen teacher's predictions."""
