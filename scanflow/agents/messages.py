"""Typed messages between agents: who sends what to whom, about which case."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def new_id() -> str:
    """A fresh message or decision id."""
    return uuid.uuid4().hex


class Message(BaseModel):
    """One message; ``id`` makes delivery idempotent, ``correlation_id`` ties a case together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    sender: str = Field(min_length=1, max_length=63)
    receiver: str = Field(min_length=1, max_length=63)
    intent: str = Field(min_length=1, max_length=63)
    payload: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=64)
    created_at: float = Field(default_factory=time.time)

    def reply(self, intent: str, payload: dict[str, Any] | None = None) -> Message:
        """A message back to the sender, in the same case."""
        return Message(
            sender=self.receiver,
            receiver=self.sender,
            intent=intent,
            payload=payload or {},
            correlation_id=self.correlation_id or self.id,
        )
