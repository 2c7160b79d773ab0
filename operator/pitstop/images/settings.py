"""The operator-wide build settings, read once from the environment the chart sets.

Every variable has a default, so an operator started by hand (tests, `pitstop dev`)
builds with pinned upstream builder images and the published operator image, in the
chart's default build namespace (`pitstop-builds`) with both builders enabled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata

from pitstop.api.spec import BuildCache
from pitstop.images import decision
from pitstop.rendering import build_job

OPERATOR_IMAGE = "PITSTOP_OPERATOR_IMAGE"
BUILDKIT_IMAGE = "PITSTOP_BUILDKIT_IMAGE"
KANIKO_IMAGE = "PITSTOP_KANIKO_IMAGE"
CACHE_REPOSITORY = "PITSTOP_BUILD_CACHE_REPOSITORY"
CACHE_MODE = "PITSTOP_BUILD_CACHE_MODE"
JOB_TTL = "PITSTOP_BUILD_JOB_TTL_SECONDS"
MAX_ATTEMPTS = "PITSTOP_BUILD_MAX_ATTEMPTS"
BACKOFF = "PITSTOP_BUILD_BACKOFF_SECONDS"
NAMESPACE = "PITSTOP_BUILD_NAMESPACE"
BUILDERS = "PITSTOP_BUILD_BUILDERS"
# How often a ModelDeployment looks at its build while one is under way: build Jobs run
# in the build namespace, which the ModelDeployment's own watches do not cover.
POLL = "PITSTOP_BUILD_POLL_SECONDS"


def _version() -> str:
    try:
        return metadata.version("pitstop")
    except metadata.PackageNotFoundError:
        return "latest"


def build_settings(env: Mapping[str, str] | None = None) -> build_job.BuildSettings:
    env = os.environ if env is None else env
    defaults = build_job.BuildSettings(operator_image="")
    cache = None
    if env.get(CACHE_REPOSITORY):
        cache = BuildCache.model_validate(
            {"repository": env[CACHE_REPOSITORY], "mode": env.get(CACHE_MODE) or "max"}
        )
    return build_job.BuildSettings(
        operator_image=env.get(OPERATOR_IMAGE) or f"pitstop/operator:{_version()}",
        namespace=env.get(NAMESPACE) or defaults.namespace,
        buildkit_image=env.get(BUILDKIT_IMAGE) or defaults.buildkit_image,
        kaniko_image=env.get(KANIKO_IMAGE) or defaults.kaniko_image,
        default_cache=cache,
        ttl_seconds=int(env.get(JOB_TTL) or defaults.ttl_seconds),
    )


def policy(env: Mapping[str, str] | None = None) -> decision.Policy:
    env = os.environ if env is None else env
    defaults = decision.Policy()
    return decision.Policy(
        max_attempts=int(env.get(MAX_ATTEMPTS) or defaults.max_attempts),
        backoff_seconds=float(env.get(BACKOFF) or defaults.backoff_seconds),
        poll_seconds=float(env.get(POLL) or defaults.poll_seconds),
        builders=builders(env),
    )


def builders(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The enabled builders, comma-separated (the chart's build.builders)."""
    env = os.environ if env is None else env
    named = {b.strip() for b in (env.get(BUILDERS) or "").split(",") if b.strip()}
    return frozenset(named) if named else decision.BUILDERS
