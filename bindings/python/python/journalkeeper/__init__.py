"""JournalKeeper-rs for Python: a thin layer over the Rust core (see the project README)."""

from ._native import version

__version__: str = version()

__all__ = ["version", "__version__"]
