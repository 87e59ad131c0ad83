"""Reviewing an anomaly: the body of ``POST /v1/anomalies/{id}/review``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lodestone.domain.anomalies import MAX_NOTE
from lodestone.gateway.schemas.base import Strict


class AnomalyReviewCreate(Strict):
    # Not a CommandIn: the anomaly is named in the path and its rule comes from the
    # read model.
    status: str = Field(
        description="acknowledged, dismissed, or open (to open a reviewed anomaly again)",
        examples=["acknowledged"],
    )
    note: Annotated[str, Field(max_length=MAX_NOTE, description="Why: recorded with who decided")]
