"""Storage: the engine, sessions and the declarative base shared by every domain's models."""

from townsquare.db.base import Base, utcnow
from townsquare.db.engine import Database

__all__ = ["Base", "Database", "utcnow"]
