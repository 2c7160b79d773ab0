"""`pitstop package ...`: make, inspect, export, import and build packages.

Thin: parse options, call `package`/`store`/`bento`, print. A `PackagingError` is
shown as a one-line error with exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pitstop.packaging import errors

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except errors.PackagingError as error:
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


def _metric(value: str) -> tuple[str, float]:
    name, sep, number = value.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(number)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not NAME=NUMBER") from None


@click.group()
def package() -> None:
    """Model packages: a trained model with its signature, data profile and lineage."""


@package.command("create")
@click.argument("model_file", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="Training data (CSV or Parquet).")  # fmt: skip
@click.option("--name", required=True, help="Package name, e.g. fraud.")
@click.option("--version", "version", required=True, help="Package version, e.g. 7.")
@click.option("--target", default=None, help="Label column in the data, left out of the features.")
@click.option("--data-uri", default=None,
              help="Where the data lives for good (s3://...); defaults to the file's URI.")  # fmt: skip
@click.option("--metric", "metrics", multiple=True, help="Training metric NAME=NUMBER.")
@click.option("--export", "export_to", default=None, type=click.Path(path_type=Path),
              help="Also export the package to this folder or .bentomodel file.")  # fmt: skip
@click.option("--no-batching", is_flag=True,
              help="The model's answer for a row depends on the other rows of a call: "
                   "never batch requests together.")  # fmt: skip
@_friendly
def create(
    model_file: Path,
    data: Path,
    name: str,
    version: str,
    target: str | None,
    data_uri: str | None,
    metrics: tuple[str, ...],
    export_to: Path | None,
    no_batching: bool,
) -> None:
    """Package MODEL_FILE (joblib or pickle) trained on --data.

    Classes and functions of your own modules that the model uses (not installed
    libraries) are shipped inside the package: run it where those modules import, as
    `python` would, i.e. from the folder that holds them."""
    from pitstop.packaging import package as package_
    from pitstop.packaging import store

    # As `python -c` does: the working directory's modules are importable, so a model
    # that refers to one (features.py beside the notebook) loads, and its code ships.
    sys.path.insert(0, os.getcwd())
    result = package_.create(
        model_file,
        data,
        name=name,
        version=version,
        target=target,
        data_uri=data_uri,
        metrics=dict(_metric(m) for m in metrics),
        batchable=not no_batching,
    )
    click.echo(f"packaged {result.tag} {result.digest}")
    if result.code:
        click.echo(f"shipped with the model, by value: {', '.join(result.code)}")
    if export_to is not None:
        click.echo(f"exported to {store.export(result.tag, export_to)}")


@package.command("show")
@click.argument("tag")
@_friendly
def show(tag: str) -> None:
    """Print the manifest of package TAG (name:version) as JSON."""
    from pitstop.packaging import store

    click.echo(json.dumps(store.load_manifest(tag).model_dump(mode="json"), indent=2))


@package.command("export")
@click.argument("tag")
@click.argument("destination", type=click.Path(path_type=Path))
@_friendly
def export(tag: str, destination: Path) -> None:
    """Export package TAG to DESTINATION (a folder or a .bentomodel file)."""
    from pitstop.packaging import store

    click.echo(str(store.export(tag, destination)))


@package.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@_friendly
def import_(source: Path) -> None:
    """Import an exported package, verifying its hashes."""
    from pitstop.packaging import store

    result = store.import_(source)
    click.echo(f"imported {result.tag} {result.digest}")


@package.command("bento")
@click.argument("tag")
@click.option("--template", default=None, type=click.Path(path_type=Path),
              help="Serving template folder (default: model_images/serving).")  # fmt: skip
@_friendly
def bento(tag: str, template: Path | None) -> None:
    """Build the serving bento for package TAG."""
    from pitstop.packaging import bento as bento_

    click.echo(bento_.build(tag, template))


@package.command("prepare-build")
@click.option("--source", required=True,
              help="Package source: https://, s3:// or a path (a mounted volume).")  # fmt: skip
@click.option("--name", required=True, help="Model name the package must have.")
@click.option("--version", "version", required=True, help="Version the package must have.")
@click.option("--output", required=True, type=click.Path(path_type=Path),
              help="Folder to write the build context (bento + Dockerfile) into.")  # fmt: skip
@click.option("--builder", type=click.Choice(["buildkit", "kaniko"]), default="buildkit",
              show_default=True)  # fmt: skip
@click.option("--template", default=None, type=click.Path(path_type=Path),
              help="Serving template folder (default: model_images/serving).")  # fmt: skip
@click.option("--image", default=None, help="The image the build will push (reported).")
@click.option("--build-key", default=None, help="The operator's build key (reported).")
@click.option("--termination-log", default=None, type=click.Path(path_type=Path),
              help="Write the result as JSON here (the pod's termination message).")  # fmt: skip
@_friendly
def prepare_build(
    source: str,
    name: str,
    version: str,
    output: Path,
    builder: str,
    template: Path | None,
    image: str | None,
    build_key: str | None,
    termination_log: Path | None,
) -> None:
    """Fetch, verify and stage a package as a container build context (the build Job's
    first step)."""
    import os

    from pitstop.packaging import build_context

    template = template or (
        Path(os.environ["PITSTOP_SERVING_TEMPLATE"])
        if os.environ.get("PITSTOP_SERVING_TEMPLATE")
        else None
    )
    prepared = build_context.prepare(source, name, version, output, builder, template)
    result = {
        "package": prepared.package,
        "packageDigest": prepared.package_digest,
        "bento": prepared.bento,
        "image": image,
        "buildKey": build_key,
    }
    text = json.dumps({k: v for k, v in result.items() if v is not None})
    if termination_log is not None:
        termination_log.write_text(text)
    click.echo(text)
