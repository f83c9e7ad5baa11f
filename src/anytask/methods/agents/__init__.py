"""Agents: loops that reuse one frozen language model (SmolLM2 through the causal-LM backbone) or a rule oracle
behind the same ``TextLM`` interface: RL of Thoughts' navigator over logic blocks (card 34). See ``base.py``."""

from anytask.methods.agents import rlot  # noqa: F401
from anytask.methods.agents.base import AGENTS, BackboneLM, CallStats, RoutedLM, RuleLM, TextLM

__all__ = ["AGENTS", "BackboneLM", "CallStats", "RoutedLM", "RuleLM", "TextLM"]
