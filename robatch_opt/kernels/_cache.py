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

If that folder cannot be written, a per-user folder under the system's temporary directory
is used instead; the kernels are never cached beside the installed source.
"""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching

__all__ = ["cache_dir", "install_locator", "kernels_cached", "mark_cached"]

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


_private_dir: Path | None = None


def _fallback_dir(create: bool = True) -> Path:
    """Where the kernels are cached when :func:`cache_dir` cannot be written: a per-user folder
    under the system's temporary directory (never beside the source).

    The folder's name is predictable and Numba's cache files are pickles, which run code
    when loaded: on a shared machine another user could create it first. It is used only
    if it is this user's own and closed to others (created so when missing); otherwise this
    process caches in a private temporary folder of its own, removed when it exits. With
    ``create=False`` nothing is created (the path where markers would be, for a lookup).
    """
    import tempfile

    if not hasattr(os, "getuid"):          # pragma: no cover - not POSIX
        return Path(tempfile.gettempdir()) / "robatch_opt-user" / "numba"
    base = Path(tempfile.gettempdir()) / f"robatch_opt-{os.getuid()}"
    if create:
        try:
            base.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            pass
    try:
        st = base.lstat()
        private = not base.is_symlink() and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0
    except OSError:
        private = False
    global _private_dir
    if private or (not create and _private_dir is None):
        # (A lookup of markers may read an untrusted folder: markers change what the
        # command line announces, never what runs.)
        return base / "numba"
    if _private_dir is None:
        import atexit
        import shutil

        _private_dir = Path(tempfile.mkdtemp(prefix="robatch_opt-numba-"))
        atexit.register(shutil.rmtree, _private_dir, ignore_errors=True)
    return _private_dir


class PackageCacheLocator(_UserWide):
    """Numba cache locator for this package's kernels only (every other function is left alone)."""

    _root: Path | None = None            # set by from_function: cache_dir() or the fallback

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str((self._root or cache_dir()) / _source_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            if Path(py_file).resolve().parent != _KERNELS_DIR:
                return None
        except OSError:
            return None
        # The user's cache folder, else a temporary one: never Numba's next locator, which
        # would write beside the installed source (the bug this module exists for).
        for where in (cache_dir, _fallback_dir):          # the fallback checked only if needed
            root = where()
            cls._root = root
            found = super().from_function(py_func, py_file)
            if found is not None:
                return found
        return None


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


def _source_subpath(py_file: str) -> str:
    """The cache subfolder of a kernel file: its folder (as Numba names it) and a hash of its
    source, so that the cache of another version of the kernels is never taken for this one."""
    import hashlib

    try:
        digest = hashlib.sha1(Path(py_file).read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "unknown"
    return f"{PackageCacheLocator.get_suitable_cache_subpath(py_file)}-{digest}"


def _marker_paths(part: str = "core") -> list[Path]:
    # Numba's entries are kept apart by its version, the Python version and the CPU (a
    # shared home folder, an upgrade): the marker says whose compile it was, likewise.
    import platform
    import sys

    import numba

    source = str(_KERNELS_DIR / "greedy_kernels.py")
    name = (f".warmed-up-{part}-py{sys.version_info[0]}{sys.version_info[1]}-numba{numba.__version__}-"
            f"{platform.machine() or 'cpu'}")
    return [root / _source_subpath(source) / name for root in (cache_dir(), _fallback_dir(create=False))]


def kernels_cached(parts=("core",)) -> bool:
    """Whether the kernels of the current ``greedy_kernels.py`` that ``parts`` name were
    compiled and cached whole, by this Python and Numba on this kind of machine.

    :func:`robatch_opt.kernels.warmup.warm_up` leaves a marker per part (the keys of
    :data:`robatch_opt.kernels.warmup.COMPILE_JOBS`: ``"core"``, ``"quality"``,
    ``"parallel"``, ``"quality+parallel"``, ``"large"``, ``"frontier"``) in the source's own
    cache folder (its name holds the hash of the source) once its kernels have compiled; a
    cache of another version, or of a compile interrupted half-way, has none.
    """
    return all(any(p.exists() for p in _marker_paths(part)) for part in parts)


def mark_cached(parts=("core",)) -> None:
    """Leave the markers of :func:`kernels_cached` (called after a complete warm-up)."""
    for part in parts:
        for p in _marker_paths(part):
            if p.parent.is_dir():
                try:
                    p.touch()
                    break
                except OSError:
                    continue
