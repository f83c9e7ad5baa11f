"""anytask: one frozen pretrained model, reused across any number of tasks.

Layers, each importing only from the ones before it::

    core        errors, registry, io (saved folders), validation, results
    backbones   frozen encoders, the embedding cache; the only code that touches model internals
    data        datasets, streams, k-shot sampling
    methods     one folder per family: heads, icl, concepts, prompting, finetune, merging, continual
    experiments the few-shot benchmark, the stream runner, reports
    apps        TextClassifier, demo, serve, cli

Nothing heavy is imported here: ``from anytask import TextClassifier`` (and the other common
names below) imports its module on first use, so ``import anytask`` is instant and never touches
the network. Module paths from before the layered layout (``anytask.heads``, ``anytask.merging``,
...) still import, with a DeprecationWarning (see ``anytask._compat``).
"""

import logging

from anytask import _compat
from anytask.core.errors import AnytaskError

# a library logs and never configures logging: one logger per module under "anytask", silent until the
# application (the CLI's -v, or the user's logging.basicConfig) attaches a handler
logging.getLogger("anytask").addHandler(logging.NullHandler())

__version__ = "0.2.0"

_compat.install()

# common names -> the module that defines them (imported on first access)
_LAZY = {
    "TextClassifier": "anytask.apps.classifier",
    "TextScorer": "anytask.apps.scorer",
    "create_scorer": "anytask.methods.scores",
    "Embed": "anytask.apps.embed",
    "TextIndex": "anytask.methods.retrieval.text",
    "resolve_device": "anytask.backbones.device",
    "create_head": "anytask.methods.heads",
    "HEADS": "anytask.methods.heads",
    "get_backbone": "anytask.backbones",
    "create_backbone": "anytask.backbones",
    "Embedder": "anytask.backbones",
    "save": "anytask.core.io",
    "load": "anytask.core.io",
    "io": "anytask.core.io",
    "registries": "anytask.core.registry",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'anytask' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    return module if module.__name__.rsplit(".", 1)[-1] == name else getattr(module, name)


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = ["AnytaskError", "__version__", *_LAZY]
