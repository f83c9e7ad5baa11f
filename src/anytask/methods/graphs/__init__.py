"""Graphs: unsupervised graph encoders reused frozen across node, link and graph tasks (``ENCODERS``), and
task-agnostic valuation (``VALUATIONS``). Needs the ``graph`` extra (PyTorch Geometric) to train or embed;
importing the family does not. One file per method, one import line here."""

from anytask.methods.graphs.base import ENCODERS, VALUATIONS, GraphEncoder
from anytask.methods.graphs import gae  # noqa: E402,F401
from anytask.methods.graphs import isoc_vgae  # noqa: E402,F401
from anytask.methods.graphs import valuation  # noqa: E402,F401

__all__ = ["ENCODERS", "VALUATIONS", "GraphEncoder"]
