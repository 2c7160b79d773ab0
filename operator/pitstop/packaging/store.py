"""Packages in the BentoML model store: save, load, export and import.

The only packaging module that imports bentoml. A package is a BentoML model holding
two files, the joblib model and the manifest; BentoML's `models.create` context
removes its temporary folder when anything inside fails, so a failed save leaves
nothing behind. Imports are verified against the manifest's hashes before they are
kept.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import bentoml
import joblib

from pitstop.packaging import digest, errors, manifest

# BentoML's tag grammar (lower-case, digits, '.', '_', '-'; 63 characters at most).
_TAG_PART = re.compile(r"^[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?$")
EXPORT_SUFFIX = ".bentomodel"


def check_tag(name: str, version: str) -> None:
    for label, value in (("name", name), ("version", version)):
        if not _TAG_PART.match(value):
            raise errors.PackagingError(
                f"package {label} {value!r} is invalid: use lower-case letters, digits, "
                "'.', '_' and '-', at most 63 characters, starting and ending alphanumeric"
            )


def _read_manifest(model: Any) -> manifest.Manifest:
    path = Path(model.path_of(manifest.FILENAME))
    if not path.is_file():
        raise errors.PackagingError(f"model {model.tag} is not a Pitstop package (no manifest)")
    return manifest.Manifest.model_validate_json(path.read_bytes())


def _get(tag: str) -> Any:
    try:
        return bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as error:
        raise errors.PackagingError(f"package {tag} is not in the model store") from error


def save(package: manifest.Manifest, model_bytes: bytes) -> str:
    """Store a package; saving the same digest again under its tag is a no-op."""
    try:
        existing = bentoml.models.get(package.tag)
    except bentoml.exceptions.NotFound:
        existing = None
    if existing is not None:
        if _read_manifest(existing).digest == package.digest:
            return package.tag
        raise errors.PackagingError(
            f"package {package.tag} already exists with different content; choose a new version"
        )
    with bentoml.models.create(
        package.tag,
        labels={"pitstop.dev/package": "true"},
        metadata={"digest": package.digest, "output": package.signature.output.kind},
    ) as model:
        Path(model.path_of(package.model_file)).write_bytes(model_bytes)
        Path(model.path_of(manifest.FILENAME)).write_text(package.model_dump_json(indent=2))
    return package.tag


def path(tag: str) -> Path:
    """The folder holding a stored package's files."""
    return Path(_get(tag).path)


def load_manifest(tag: str) -> manifest.Manifest:
    return _read_manifest(_get(tag))


def load_estimator(tag: str) -> Any:
    model = _get(tag)
    package = _read_manifest(model)
    return joblib.load(model.path_of(package.model_file))


def verify(folder: Path) -> manifest.Manifest:
    """The manifest of a package folder whose files match its hashes."""
    package = manifest.Manifest.model_validate_json((folder / manifest.FILENAME).read_bytes())
    model_sha256 = hashlib.sha256((folder / package.model_file).read_bytes()).hexdigest()
    if model_sha256 != package.model_sha256:
        raise errors.PackagingError(
            f"package {package.tag}: model file hash {model_sha256} does not match the "
            f"manifest's {package.model_sha256}"
        )
    expected = digest.compute(
        package.content_sha256,
        package.signature,
        package.profile,
        package.data,
        package.training,
    )
    if expected != package.digest:
        raise errors.PackagingError(
            f"package {package.tag}: digest {package.digest} does not match its content "
            f"({expected})"
        )
    return package


def export(tag: str, destination: Path) -> Path:
    """Write a package to a `.bentomodel` file, or into a folder (named by its tag).

    Paths are made absolute first: BentoML opens them as filesystem URLs, which reads a
    relative `out/m-1.bentomodel` as `/out/m-1.bentomodel`."""
    package = load_manifest(tag)
    destination = destination.absolute()
    if destination.is_dir():
        destination = destination / f"{package.name}-{package.version}{EXPORT_SUFFIX}"
    elif destination.suffix != EXPORT_SUFFIX:
        raise errors.PackagingError(
            f"export destination {destination} must be a folder or a {EXPORT_SUFFIX} file"
        )
    if not destination.parent.is_dir():
        raise errors.PackagingError(
            f"export destination folder {destination.parent} does not exist"
        )
    return Path(bentoml.models.export_model(tag, str(destination)))


def import_(source: Path) -> manifest.Manifest:
    """Import an exported package, refusing (and removing) one that fails `verify`."""
    source = source.absolute()  # as in `export`
    if not source.is_file():
        raise errors.PackagingError(f"package file {source} does not exist")
    try:
        model = bentoml.models.import_model(str(source))
    except bentoml.exceptions.BentoMLException as error:
        raise errors.PackagingError(f"package file {source} cannot be imported: {error}") from error
    try:
        return verify(Path(model.path))
    except Exception:
        bentoml.models.delete(model.tag)
        raise
