"""Alignment: new signals into a frozen embedding space (modality mappers) and multi-view bags pretrained into
frozen bag embeddings (bag encoders). One file per method, one import line here."""

from anytask.methods.alignment.base import BAG_ENCODERS, MAPPERS, check_bags, info_nce

from anytask.methods.alignment import brainclip  # noqa: E402,F401
from anytask.methods.alignment import madeleine  # noqa: E402,F401

from anytask.methods.alignment.brainclip import ModalityMapper  # noqa: E402
from anytask.methods.alignment.madeleine import BagEncoder, MeanPool, got_loss  # noqa: E402

__all__ = ["BAG_ENCODERS", "MAPPERS", "BagEncoder", "MeanPool", "ModalityMapper", "check_bags", "got_loss", "info_nce"]
