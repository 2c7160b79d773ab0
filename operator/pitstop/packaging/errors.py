"""The one exception type packaging raises for bad input.

Callers (the CLI, the operator's build step) show its message as is, so every raise
site names the file, column or attribute that is wrong.
"""

from __future__ import annotations


class PackagingError(Exception):
    """A model, data file or package that cannot become a valid package."""
