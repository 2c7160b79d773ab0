"""The build context the prepare step writes: readable by the build step's user."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from pitstop.packaging import build_context


def test_a_context_copied_from_a_private_temporary_folder_is_readable_by_all(
    tmp_path: Path,
) -> None:
    # BentoML writes the context into a mkdtemp folder: mode 0700, files 0600 under a
    # restrictive umask. The build step (rootless BuildKit, uid 1000) is another user.
    source = Path(tempfile.mkdtemp(dir=tmp_path))
    (source / "env" / "docker").mkdir(parents=True, mode=0o700)
    (source / "env" / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (source / "env" / "docker" / "Dockerfile").chmod(0o600)
    (source / "env" / "docker" / "entrypoint.sh").write_text("#!/bin/sh\n")
    (source / "env" / "docker" / "entrypoint.sh").chmod(0o700)
    destination = tmp_path / "workspace" / "context"
    destination.mkdir(parents=True)

    build_context.copy_readable(source, destination)

    def mode(relative: str) -> int:
        return stat.S_IMODE((destination / relative).lstat().st_mode)

    assert stat.S_IMODE(source.stat().st_mode) == 0o700  # the premise
    assert mode(".") == 0o755
    assert mode("env") == mode("env/docker") == 0o755
    assert mode("env/docker/Dockerfile") == 0o644
    assert mode("env/docker/entrypoint.sh") == 0o755  # programs stay runnable
