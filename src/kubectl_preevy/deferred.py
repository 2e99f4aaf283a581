"""Stand-ins for modules that are imported on every run but used on none of its hot paths: each imports the
real module when one of its attributes is first used (start-up time: see process.py and __init__.py).

importlib's LazyLoader does not help here: the import statement itself reads the module's __spec__, which
makes a lazy module load. A stand-in answers what an import statement asks without loading: __spec__ (None),
__path__ (from the module's spec, found without running it) and, while a `from X import name` runs, a
placeholder for that name (see `placeholders`)."""

import contextlib
import importlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator
from typing import Any


class Deferred(types.ModuleType):
    """A stand-in for a module, that imports it when one of its attributes is first used."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "__path__":  # `from X import y` asks whether X is a package: no need to run it
            return self._path()
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)  # also puts it in its package, in our place
        self.__dict__.update(real.__dict__)
        return getattr(real, attribute)

    def _path(self) -> list[str]:
        package, _, _ = self.__name__.rpartition(".")
        # the package as importing this module would import it (during plumbum's __init__: the one running)
        where = importlib.import_module(package).__path__ if package else None
        spec = importlib.machinery.PathFinder.find_spec(self.__name__, where)
        if spec is None or spec.submodule_search_locations is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute '__path__'")
        self.__path__ = list(spec.submodule_search_locations)
        return self.__path__


def defer(*names: str) -> None:
    """`import name` gives a Deferred stand-in from now on (unless it is imported already), until one of its
    attributes is used; then it is the module. A dotted name's package gets the stand-in as its attribute when
    the package is imported already (otherwise the stand-in is found in sys.modules, as any module is)."""
    for name in names:
        if name not in sys.modules:
            stand_in = Deferred(name)
            sys.modules[name] = stand_in
            package, _, child = name.rpartition(".")
            if package in sys.modules:
                setattr(sys.modules[package], child, stand_in)


@contextlib.contextmanager
def placeholders(module: str, *names: str) -> Iterator[None]:
    """Within the block, the stand-in of `module` (deferred) has these attributes (None): a `from module import
    name` then binds None instead of loading it. After the block they are gone (a later use of the stand-in
    loads the module, and gets the real ones): whoever bound the placeholder must then drop it."""
    stand_in = sys.modules.get(module)
    placed = [name for name in names if isinstance(stand_in, Deferred) and name not in stand_in.__dict__]
    for name in placed:
        setattr(stand_in, name, None)
    try:
        yield
    finally:
        for name in placed:
            stand_in.__dict__.pop(name, None)
