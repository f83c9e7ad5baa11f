"""Request-schema pieces the task and index paths share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(min_length=1, description="non-empty text")]


class Strict(BaseModel):
    """A request body that refuses unknown fields (a typo is an error, not a silently ignored option)."""

    model_config = ConfigDict(extra="forbid")
