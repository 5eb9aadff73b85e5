"""Table of the control server's API tokens: one row per token, only its hash is kept."""

from __future__ import annotations

from sqlalchemy import Float, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from scanflow.store.models import Base


class TokenRecord(Base):
    """A team's token: its scope, its salted scrypt hash, when it expires or was revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    scope: Mapped[str] = mapped_column(String(16))  # read | admin
    name: Mapped[str] = mapped_column(String(100), default="")
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    digest: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
