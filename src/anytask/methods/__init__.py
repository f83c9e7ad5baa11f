"""Method families, one folder each: ``base.py`` or the package holds the family's registry, one file
per method, ``train.py`` for weights the family ships, ``weights/``."""

from __future__ import annotations


def all_registries():
    """Every registry of every family, each family imported first (found by walking this package, not
    from a hand-kept list): backbones, data, then ``anytask.methods.<family>`` in name order."""
    import importlib
    import pkgutil

    from anytask.core.registry import registries

    for package in ("anytask.backbones", "anytask.data"):
        importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")
    return registries()
