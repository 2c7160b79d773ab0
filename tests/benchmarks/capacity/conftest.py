"""The e2e fixtures, as the rollback benchmark imports them (`rollback.conftest`)."""

from __future__ import annotations

from rollback.conftest import *  # noqa: F403
