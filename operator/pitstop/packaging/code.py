"""The user's own code a model needs, shipped inside the package.

A model pickles its classes and functions by reference (`features.AmountBucketizer`),
and the serving image installs only the libraries a package records (scikit-learn,
numpy, pandas, joblib, scipy) and the serving stack. A model that uses a class of the
user's own module, or one defined in a notebook (`__main__`), would load on the
user's machine and fail in every pod. So the modules a model refers to that are not
installed (not in the standard library, not in a site-packages folder) are pickled by
value with cloudpickle: the package's model file then holds their code, and any
`joblib.load` rebuilds the classes without the module.

The package's identity covers that code: the content hash adds each shipped module's
source, so editing the module makes a new package, while re-packaging unchanged code
gives the same digest.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import site
import sys
import sysconfig
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cloudpickle

MAIN = "__main__"


class _Discard(io.RawIOBase):
    """Where the references pickler writes: nowhere (a big model is not copied)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


class _References(pickle.Pickler):
    """A pickler that notes the module of every object it writes and of every class or
    function it refers to (by reference: nothing of theirs is written)."""

    def __init__(self) -> None:
        super().__init__(_Discard(), protocol=5)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        self.modules.add(type(obj).__module__)
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            self.modules.add(str(getattr(obj, "__module__", "") or ""))
        return NotImplemented


def _installed_roots() -> list[Path]:
    """Where installed code lives: the standard library and site-packages folders (not
    whole prefixes: a project may keep its virtualenv inside itself, or itself in one)."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {*site.getsitepackages(), site.getusersitepackages()}
    return [Path(root).resolve() for root in roots]


def _top(module: str) -> str:
    return module.partition(".")[0]


def is_local(module: str, roots: Iterable[Path] | None = None) -> bool:
    """Whether `module` is the user's own: not installed, so no image would have it."""
    if module == MAIN:
        return True
    top = _top(module)
    if not top or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return False
    loaded = sys.modules.get(top)
    file = getattr(loaded, "__file__", None)
    if not file:  # not imported, built in, or a namespace package: nothing to ship
        return False
    path = Path(file).resolve()
    return not any(path.is_relative_to(root) for root in roots or _installed_roots())


def local_modules(estimator: Any) -> tuple[str, ...]:
    """The top-level modules of the user's own code that `estimator` refers to."""
    finder = _References()
    finder.dump(estimator)
    roots = _installed_roots()
    return tuple(sorted({_top(m) for m in finder.modules if m and is_local(m, roots)}))


def dump_by_value(estimator: Any, modules: Iterable[str]) -> bytes:
    """`estimator` pickled with the code of `modules` inside (`__main__` always is)."""
    registered = []
    try:
        for name in modules:
            if name != MAIN and name not in cloudpickle.list_registry_pickle_by_value():
                cloudpickle.register_pickle_by_value(sys.modules[name])
                registered.append(sys.modules[name])
        return bytes(cloudpickle.dumps(estimator, protocol=5))
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def source_sha256(modules: Iterable[str], pickled: bytes) -> str:
    """A hash of the shipped code: each module's source files; for code with no file
    (a notebook's `__main__`), the pickled bytes, the only record of it there is."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0")
        base, files = _source_files(sys.modules.get(name))
        if not files:
            digest.update(hashlib.sha256(pickled).digest())
        for file in files:
            digest.update(str(file.relative_to(base)).encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _source_files(module: types.ModuleType | None) -> tuple[Path, list[Path]]:
    """The folder a module's sources are named from, and its source files (a package:
    every Python file under it)."""
    file = getattr(module, "__file__", None)
    if module is None or not file or module.__name__ == MAIN:
        return Path(), []
    path = Path(file)
    if path.name == "__init__.py":
        return path.parent, sorted(path.parent.rglob("*.py"))
    return path.parent, [path]
