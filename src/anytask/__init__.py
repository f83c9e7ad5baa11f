"""anytask: one frozen pretrained model, reused across any number of tasks.

Nothing heavy is imported here: backbones, heads and the benchmark are imported
on first use (``import anytask.heads`` etc.), so ``import anytask`` is instant
and never touches the network.
"""

from anytask.errors import AnytaskError

__version__ = "0.1.0"
__all__ = ["AnytaskError", "__version__"]
