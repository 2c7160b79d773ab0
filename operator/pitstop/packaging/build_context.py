"""The build Job's first step: from a package source to a container build context.

`prepare` fetches the package, imports it (which verifies its hashes and digest),
checks it is the model and version the ModelDeployment names, builds the bento and
writes BentoML's own build context for it: the bento, its models and the generated
Dockerfile at `env/docker/Dockerfile`. The build step only needs that folder. The same
code runs in the Job (`pitstop package prepare-build`) and in the tests, which serve
the folder with `bentoml serve`.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bentoml

from pitstop.packaging import bento, errors, fetch, store

DOCKERFILE = Path("env") / "docker" / "Dockerfile"


@dataclass(frozen=True)
class Prepared:
    package: str
    """The package's tag, name:version."""
    package_digest: str
    bento: str
    context: Path
    dockerfile: Path


def prepare(
    source: str,
    name: str,
    version: str,
    output: Path,
    builder: str = "buildkit",
    template: Path | None = None,
) -> Prepared:
    """Write the build context of package `name:version` at `source` into `output`."""
    with tempfile.TemporaryDirectory(prefix="pitstop-fetch-") as scratch:
        exported = fetch.fetch(source, Path(scratch))
        package = store.import_(exported)
    if (package.name, package.version) != (name, version):
        raise errors.PackagingError(
            f"source {source} holds package {package.tag}, but the ModelDeployment "
            f"names {name}:{version}"
        )
    tag = bento.build(package.tag, template)
    write(tag, output, builder)
    return Prepared(package.tag, package.digest, tag, output, output / DOCKERFILE)


def write(bento_tag: str, output: Path, builder: str = "buildkit") -> Path:
    """Write BentoML's build context of a built bento into `output`: the bento with its
    models, as its image holds them (at $BENTO_PATH), and the Dockerfile. `bentoml
    serve <output>` serves it as the image's entrypoint does, whatever BENTOML_HOME is."""
    built = bentoml.bentos.get(bento_tag)
    # BuildKit allows cache mounts in the Dockerfile; kaniko does not understand them.
    from bentoml._internal.container import construct_containerfile

    output.mkdir(parents=True, exist_ok=True)
    with construct_containerfile(built, enable_buildkit=builder == "buildkit") as (folder, _):
        copy_readable(Path(folder), output)
    return output


def copy_readable(source: Path, destination: Path) -> None:
    """Copy the tree `source` into `destination`, readable by every user.

    The build step runs as another user than this one (rootless BuildKit as uid 1000,
    this step as 65532), and `copytree` copies modes: BentoML's temporary folder is
    0700, so a plain copy leaves the builder `lstat ... permission denied`. Read (and
    search, for folders and programs) for all; nothing becomes writable."""
    shutil.copytree(source, destination, dirs_exist_ok=True)
    for path in (destination, *destination.rglob("*")):
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        executable = path.is_dir() or mode & stat.S_IXUSR
        path.chmod(mode | 0o444 | (0o111 if executable else 0))
