"""Configuration from `PITSTOP_*` environment variables, read once at start.

The operator renders these into the Deployment; files that change at run time (API
keys, mirror configuration) are named here and re-read by their own modules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_KEYS_DIR = "/etc/pitstop/api-keys"
DEFAULT_MIRROR_CONFIG = "/etc/pitstop/mirror/mirror.json"


class ConfigError(ValueError):
    """An environment variable with a value the template cannot use."""


@dataclass(frozen=True)
class Config:
    # The package tag; empty: the one model of the bento being served (`predictor`).
    model: str
    api_keys_dir: Path
    # PITSTOP_API_KEYS_DIR given explicitly: the operator sets it exactly when the
    # ModelDeployment asks for auth, so then no readable key means refuse, not let in.
    auth_required: bool
    rate_limit_rps: float
    rate_limit_burst: float
    max_batch: int
    max_body_bytes: int
    mirror_config: Path
    drift_window: int
    access_log: bool
    # Micro-batching (`batching`): off at 0 ms; at most this many rows per model call.
    batch_wait_ms: float = 0.0
    batch_max_rows: int = 64
    # Sent as `x-pitstop-revision` on every /predict answer (none when empty).
    revision: str = ""
    # Predictions kept per worker for `POST /feedback` (0: feedback off), and where the
    # other pods are (`peers`): empty, or host:port entries.
    feedback_retain: int = 100_000
    feedback_peers: str = ""


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise ConfigError(f"{name}={raw!r} is not a number") from error
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def from_environ(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    model = env.get("PITSTOP_MODEL", "").strip()
    rps = _number(env, "PITSTOP_RATE_LIMIT_RPS", 0.0, 0.0)
    keys_dir = env.get("PITSTOP_API_KEYS_DIR", "").strip()
    return Config(
        model=model,
        api_keys_dir=Path(keys_dir or DEFAULT_API_KEYS_DIR),
        auth_required=bool(keys_dir),
        rate_limit_rps=rps,
        rate_limit_burst=_number(env, "PITSTOP_RATE_LIMIT_BURST", max(rps, 1.0), 1.0),
        max_batch=int(_number(env, "PITSTOP_MAX_BATCH", 1000, 1)),
        max_body_bytes=int(_number(env, "PITSTOP_MAX_BODY_BYTES", 8 << 20, 1024)),
        mirror_config=Path(env.get("PITSTOP_MIRROR_CONFIG", "") or DEFAULT_MIRROR_CONFIG),
        drift_window=int(_number(env, "PITSTOP_DRIFT_WINDOW", 1000, 1)),
        batch_wait_ms=_number(env, "PITSTOP_BATCH_WAIT_MS", 0.0, 0.0),
        batch_max_rows=int(_number(env, "PITSTOP_BATCH_MAX_ROWS", 64, 1)),
        revision=env.get("PITSTOP_REVISION", "").strip(),
        feedback_retain=int(_number(env, "PITSTOP_FEEDBACK_RETAIN", 100_000, 0)),
        feedback_peers=env.get("PITSTOP_FEEDBACK_PEERS", "").strip(),
        access_log=env.get("PITSTOP_ACCESS_LOG", "true").strip().lower()
        not in {"0", "false", "no", "off"},
    )
