"""SQLite storage: the only package that holds SQL."""

from controller.store.db import Store

__all__ = ["Store"]
