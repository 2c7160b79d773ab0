"""Turning a package into a bento: the serving template plus one model.

The template (`model_images/serving/`) imports the pure `pitstop.packaging` modules,
so the build stages a context holding both, fills the template's bentofile with the
package's tag and the library versions it was trained with, and calls BentoML. The
staging folder is temporary; only the bento store is written.

Nothing that names the package goes into the bentofile's `envs`: BentoML declares
them as ARG and ENV at the top of the generated Dockerfile, before the system and
Python packages are installed, so a per-package value there gave every version of a
model its own dependency layers — a retrained model rebuilt them all, and a registry
build cache never hit. The served image finds its package as the bento's only model
instead (the template's `PITSTOP_MODEL` default), so two versions trained with the
same libraries share every layer up to the bento's own files.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import bentoml
import yaml

from pitstop.packaging import errors, store

# What the image must install, beyond the template's own floors: the libraries the
# model was trained with, at the same versions (unpickling across versions is unsafe).
RUNTIME_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")


def default_template() -> Path:
    """The template in a source checkout: <repo>/model_images/serving."""
    return Path(__file__).resolve().parents[3] / "model_images" / "serving"


def stage(tag: str, template: Path, destination: Path) -> Path:
    """Write a complete build context for `tag` into `destination`."""
    package = store.load_manifest(tag)
    if not (template / "bentofile.yaml").is_file():
        raise errors.PackagingError(f"{template} is not a serving template (no bentofile.yaml)")
    shutil.copytree(
        template, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    source = Path(__file__).resolve().parent
    target = destination / "pitstop" / "packaging"
    target.mkdir(parents=True, exist_ok=True)
    (destination / "pitstop" / "__init__.py").write_text('"""Pitstop (packaging only)."""\n')
    for module in source.glob("*.py"):
        shutil.copy2(module, target / module.name)
    config: dict[str, Any] = yaml.safe_load((template / "bentofile.yaml").read_text())
    config["models"] = [tag]
    pins = [
        f"{name}=={version}"
        for name, version in sorted(package.training.libraries.items())
        if name in RUNTIME_LIBRARIES
    ]
    python = config.setdefault("python", {})
    python["packages"] = [*python.get("packages", []), *pins]
    # A template's own PITSTOP_MODEL would name another package (and split the cache).
    config["envs"] = [env for env in config.get("envs", []) if env.get("name") != "PITSTOP_MODEL"]
    config.setdefault("labels", {}).update(
        {"pitstop.dev/package": package.name, "pitstop.dev/digest": package.digest[7:70]}
    )
    (destination / "bentofile.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return destination


def build(tag: str, template: Path | None = None, name: str | None = None) -> str:
    """Build the bento serving `tag`; returns the bento's tag."""
    package = store.load_manifest(tag)
    template = template or default_template()
    with tempfile.TemporaryDirectory(prefix="pitstop-bento-") as folder:
        context = stage(tag, template, Path(folder))
        bento = bentoml.bentos.build_bentofile(
            str(context / "bentofile.yaml"),
            build_ctx=str(context),
            name=name or f"{package.name}-serving",
            version=package.version,
        )
    return str(bento.tag)
