"""Where the Numba kernels' compiled code is cached: a per-user folder, never site-packages.

Numba's default for ``cache=True`` writes beside the source, into
``site-packages/robatch_opt/kernels/__pycache__``. pip does not record those files, so
uninstalling the package leaves the folder behind, where it becomes a namespace package
``robatch_opt`` that hides a later editable install (``cannot import name '__version__'
from 'robatch_opt' (unknown location)``; issue 12). The kernels' cache therefore lives in a
per-user cache folder:

1. ``NUMBA_CACHE_DIR`` when the user set it (Numba's own rule, which comes first);
2. else ``ROBATCH_OPT_CACHE_DIR`` when set;
3. else ``<user cache dir>/robatch_opt/numba`` (``~/.cache/robatch_opt/numba`` on Linux).

Numba keys every entry by the source file's path and content hash, so two installs (or two
versions) never share stale code, and reinstalling the same version reuses the compiled
kernels (the first solve after a reinstall does not compile again).

If no such folder is writable the kernels are simply not cached (Numba falls back to its
other locators, then compiles in memory).
"""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching

__all__ = ["cache_dir", "install_locator", "kernels_cached"]

_KERNELS_DIR = Path(__file__).resolve().parent

# Numba renamed its locators (``_UserWideCacheLocator`` -> ``UserWideCacheLocator``).
_UserWide = getattr(caching, "UserWideCacheLocator", None) or getattr(caching, "_UserWideCacheLocator")
_UserProvided = (getattr(caching, "UserProvidedCacheLocator", None)
                 or getattr(caching, "_UserProvidedCacheLocator"))


def cache_dir() -> Path:
    """The folder that holds the compiled kernels (see the module notes)."""
    from numba.core import config

    if config.CACHE_DIR:
        return Path(config.CACHE_DIR)
    env = os.environ.get("ROBATCH_OPT_CACHE_DIR")
    if env:
        return Path(env)
    from numba.misc.appdirs import AppDirs

    return Path(AppDirs(appname="robatch_opt", appauthor=False).user_cache_dir) / "numba"


class PackageCacheLocator(_UserWide):
    """Numba cache locator for this package's kernels only (every other function is left alone)."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            if Path(py_file).resolve().parent != _KERNELS_DIR:
                return None
        except OSError:
            return None
        return super().from_function(py_func, py_file)


def install_locator() -> None:
    """Put :class:`PackageCacheLocator` right after Numba's ``NUMBA_CACHE_DIR`` locator.

    Must run before the kernels are decorated (``robatch_opt.kernels`` does it on import).
    """
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    classes = impl._locator_classes
    if PackageCacheLocator in classes:
        return
    at = classes.index(_UserProvided) + 1 if _UserProvided in classes else 0
    classes.insert(at, PackageCacheLocator)


def kernels_cached() -> bool:
    """Whether compiled kernels of the current source are cached (so no compile is due).

    Looks for Numba's index files of ``greedy_kernels.py`` in :func:`cache_dir`; an index
    from other sources (another version) does not count.
    """
    folder = cache_dir() / PackageCacheLocator.get_suitable_cache_subpath(str(_KERNELS_DIR / "greedy_kernels.py"))
    try:
        return any(p.name.startswith("greedy_kernels.") and p.suffix == ".nbi" for p in folder.iterdir())
    except OSError:
        return False
