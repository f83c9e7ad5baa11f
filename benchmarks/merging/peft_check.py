"""Side-by-side check of anytask's merges against PEFT's merge utilities, and merge speed.

    python benchmarks/merging/peft_check.py [--models 8] [--repeats 3] [--out benchmarks/merging/peft_check.json]

PEFT (installed for this check with `pip install peft==0.13.2 accelerate==1.1.1 --no-deps`, so
the pinned torch stays; its merge functions live in peft.utils.merge_utils) merges task
tensors in memory; anytask streams the checkpoints from disk (safetensors) and writes a
loadable folder. The inputs are the same N checkpoints: MiniLM plus N independent seeded
perturbations (0.5 % of each weight's scale), which stand in for fine-tuned copies here;
only the arithmetic is being compared. Reported: the largest absolute difference between the
two merged models for task arithmetic and TIES (equal weights, where PEFT's unweighted sign
election and anytask's weighted one coincide), and wall time for each. The TIES difference is
located: entries whose trimmed task vectors sum to exactly zero get the paper's sgn(0) = 0
(nothing merged) here and a "+" election in PEFT; outside those entries the two must agree.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from anytask.backbones.hf import minilm_path
from anytask.methods.merging import MergeConfig, merge_folders


def make_checkpoints(root: Path, n: int) -> list[Path]:
    base = load_file(str(minilm_path() / "model.safetensors"))
    folders = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        sd = {k: (v + 0.005 * v.abs().mean() * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v
              for k, v in base.items()}
        folder = root / f"tuned{i}"
        folder.mkdir()
        save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
        folders.append(folder)
    return folders


def peft_merge(method: str, base: dict, tuned: list[dict], density: float) -> dict:
    from peft.utils import merge_utils

    weights = torch.ones(len(tuned))
    out, tied = {}, {}
    for k, b in base.items():
        if not b.is_floating_point():
            out[k] = b
            continue
        taus = [t[k] - b for t in tuned]
        if method == "task_arithmetic":
            delta = merge_utils.task_arithmetic(taus, weights)
        else:
            delta = merge_utils.ties(taus, weights, density)
            trimmed = torch.stack([merge_utils.prune(t, density, "magnitude") for t in taus])
            # entries whose trimmed task vectors cancel exactly: the TIES paper's elected sign is
            # sgn(0) = 0 (nothing merged; anytask), PEFT elects + and keeps the positive ones
            tied[k] = (trimmed.sum(0) == 0) & (trimmed != 0).any(0)
        out[k] = b + delta
    return out, tied


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/merging/peft_check.json")
    args = ap.parse_args(argv)
    import peft

    result = {"models": args.models, "repeats": args.repeats, "peft_version": peft.__version__,
              "command": "python benchmarks/merging/peft_check.py", "methods": {}}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folders = make_checkpoints(root, args.models)
        base_dir = minilm_path()
        for method, params in [("task_arithmetic", {}), ("ties", {"density": 0.2})]:
            config = MergeConfig(base=str(base_dir), models=[{"path": str(f)} for f in folders], method=method,
                                 parameters=params)
            ours, theirs = [], []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                merge_folders(config, root / f"out-{method}", progress=False)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()  # PEFT: load the same files, merge in memory (no writing)
                base = load_file(str(base_dir / "model.safetensors"))
                tuned = [load_file(str(f / "model.safetensors")) for f in folders]
                reference, tied = peft_merge(method, base, tuned, params.get("density", 1.0))
                theirs.append(time.perf_counter() - t0)
            merged = load_file(str(root / f"out-{method}" / "model.safetensors"))
            diff = max(float((merged[k].double() - reference[k].double()).abs().max()) for k in reference)
            outside = max(float(((merged[k].double() - reference[k].double()).abs() * ~tied[k]).max())
                          if k in tied else 0.0 for k in reference)
            result["methods"][method] = {
                "max_abs_diff": diff, "max_abs_diff_outside_exact_sign_ties": outside,
                "entries_with_exact_sign_ties": int(sum(int(t.sum()) for t in tied.values())),
                "anytask_seconds": [round(t, 3) for t in ours],
                "peft_seconds": [round(t, 3) for t in theirs],
                "anytask_includes": "reading all checkpoints, checks, merging, writing the folder",
                "peft_includes": "reading all checkpoints, merging in memory"}
            print(method, result["methods"][method])
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
