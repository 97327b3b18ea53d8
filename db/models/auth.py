"""The password table of password sign-in (db.review.auth hashes and checks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, Text
from sqlmodel import Field

from db.clock import utcnow
from db.models.base import TableModel


class UserCredential(TableModel, table=True):
    """A user's password hash (password mode only); the users table itself stays as it is."""

    __tablename__ = "user_credential"

    user_id: int = Field(sa_column=Column(Integer, ForeignKey("app_user.id"), primary_key=True))
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
