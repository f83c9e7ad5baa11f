"""Generative: one small infilling model that serves unseen image tasks from examples placed in its context
(VisualCloze), tuned for a new relation with a tiny LoRA (IC-LoRA), and a reader whose own attention picks which
coarse regions to magnify (LSceneLLM). See ``base.py``."""

from anytask.methods.generative import ic_lora, lscenellm, visualcloze  # noqa: F401
from anytask.methods.generative.base import ADAPTERS, INFILLERS, READERS, canvases
from anytask.methods.generative.model import PatchInfiller
from anytask.methods.generative.ic_lora import ICLoRA
from anytask.methods.generative.lscenellm import SceneReader
from anytask.methods.generative.visualcloze import GridInfiller

__all__ = ["ADAPTERS", "INFILLERS", "READERS", "GridInfiller", "ICLoRA", "PatchInfiller", "SceneReader", "canvases"]
