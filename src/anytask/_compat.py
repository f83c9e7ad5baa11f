"""Old import paths (before the layered layout of 0.2) as deprecated aliases, kept for one release.

``import anytask.heads`` still works and is the very module ``anytask.methods.heads``; it warns
with a DeprecationWarning naming the new path. Saved model folders written before the move name
their class by the old path (``anytask.heads.centroid:Centroid``) and load through these aliases.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED: dict[str, str] = {
    "anytask.bench": "anytask.experiments",
    "anytask.bench.report": "anytask.experiments.report",
    "anytask.bench.runner": "anytask.experiments.runner",
    "anytask.bench.tasks": "anytask.experiments.tasks",
    "anytask.classifier": "anytask.apps.classifier",
    "anytask.cli": "anytask.apps.cli",
    "anytask.concepts": "anytask.methods.concepts",
    "anytask.concepts.model": "anytask.methods.concepts.model",
    "anytask.concepts.naming": "anytask.methods.concepts.naming",
    "anytask.concepts.report": "anytask.methods.concepts.report",
    "anytask.concepts.sae": "anytask.methods.concepts.sae",
    "anytask.continual": "anytask.methods.continual",
    "anytask.continual.baselines": "anytask.methods.continual.baselines",
    "anytask.continual.detector": "anytask.methods.continual.detector",
    "anytask.continual.experts": "anytask.methods.continual.experts",
    "anytask.continual.nets": "anytask.methods.continual.nets",
    "anytask.continual.report": "anytask.experiments.stream_report",
    "anytask.continual.run": "anytask.experiments.stream",
    "anytask.continual.streams": "anytask.data.streams",
    "anytask.demo": "anytask.apps.demo",
    "anytask.errors": "anytask.core.errors",
    "anytask.heads": "anytask.methods.heads",
    "anytask.heads.base": "anytask.methods.heads.base",
    "anytask.heads.centroid": "anytask.methods.heads.centroid",
    "anytask.heads.concept_bottleneck": "anytask.methods.concepts.bottleneck",
    "anytask.heads.icl": "anytask.methods.icl.head",
    "anytask.heads.knn": "anytask.methods.heads.knn",
    "anytask.heads.linear_probe": "anytask.methods.heads.linear_probe",
    "anytask.heads.prompt_tuning": "anytask.methods.prompting.prompt_tuning",
    "anytask.heads.zero_shot": "anytask.methods.heads.zero_shot",
    "anytask.icl": "anytask.methods.icl",
    "anytask.icl.loo": "anytask.backbones.loo",
    "anytask.icl.model": "anytask.methods.icl.model",
    "anytask.icl.regressor": "anytask.methods.icl.regressor",
    "anytask.io": "anytask.core.io",
    "anytask.merging": "anytask.methods.merging",
    "anytask.merging.atlas": "anytask.methods.merging.atlas",
    "anytask.merging.finetune": "anytask.methods.finetune.finetune",
    "anytask.merging.methods": "anytask.methods.merging.methods",
    "anytask.optim": "anytask.methods.finetune.optim",
    "anytask.registry": "anytask.core.registry",
    "anytask.serve": "anytask.apps.serve",
    "anytask.serve.app": "anytask.apps.serve.app",
    "anytask.serve.batching": "anytask.apps.serve.batching",
    "anytask.serve.service": "anytask.apps.serve.service",
    "anytask.serve.store": "anytask.apps.serve.store",
}


_LONGEST_FIRST = sorted(MOVED, key=len, reverse=True)


def new_name(name: str) -> str | None:
    """The current module path for an old one (or a submodule of one), else None."""
    for old in _LONGEST_FIRST:
        if name == old or name.startswith(old + "."):
            return MOVED[old] + name[len(old):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the real module keeps its own spec; only the name is aliased


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        target = new_name(fullname) if fullname.startswith("anytask.") else None
        if target is None:
            return None
        warnings.warn(f"{fullname} moved to {target}; the old path works until anytask 0.3",
                      DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(fullname, _Alias(target))


def install() -> None:
    # first in line: an old name must resolve to the already-imported new module, never be found again by the
    # path finder inside the new package (that would run the module twice under two names)
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
