"""Agents: loops that reuse one frozen language model (SmolLM2 through the causal-LM backbone) or a rule oracle
behind the same ``TextLM`` interface: RL of Thoughts' navigator over logic blocks (card 34) and MAPLE's persistent
FSM memory for a GUI agent (card 17). See ``base.py``."""

from anytask.methods.agents import lma3, maple, rlot  # noqa: F401
from anytask.methods.agents.base import AGENTS, BackboneLM, CallStats, RoutedLM, RuleLM, TextLM
from anytask.methods.agents.maple import FSM, MapleAgent

__all__ = ["AGENTS", "FSM", "BackboneLM", "CallStats", "MapleAgent", "RoutedLM", "RuleLM", "TextLM"]
