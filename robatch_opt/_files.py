"""Output files that are whole or absent: every file the package writes goes through here.

:func:`open_atomic` writes to a temporary file in the target's folder, flushes and fsyncs
it, and renames it over the target, so a failure at any point (disk full, a file-size
limit, an interrupt, a bug) leaves the old file byte-identical and no temporary behind. A
new file gets the mode ``0o666 & ~umask`` (what ``open(path, "w")`` gives; the temporary
file's 0600 is not kept); a replaced file keeps its mode.

:func:`check_output_path` is the check the command line runs *before* any work: the path is
not empty, not a folder, in a folder that exists and can be written, and is none of the
command's input files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator, Union

from .errors import RobatchError

__all__ = ["OutputPathError", "open_atomic", "write_atomic", "write_figure", "check_output_path",
           "check_output_store"]

PathLike = Union[str, "os.PathLike[str]"]


#: Bytes the temporary name adds to the target's name (".NAME." + 8 random + ".tmp").
_TMP_EXTRA = 2 + 8 + 4


class OutputPathError(RobatchError, ValueError):
    """An output path that cannot (or must not) be written; the message names it."""


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)                   # elsewhere: the classic read (briefly changes it)
    os.umask(mask)
    return mask


def _read_only(st: os.stat_result) -> bool:
    """The file of ``st`` has no write bit for us: the owner's bit if it is ours, else any."""
    if st.st_uid == os.geteuid():
        return not st.st_mode & stat.S_IWUSR
    return not st.st_mode & 0o222


@contextlib.contextmanager
def open_atomic(path: PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """``with open_atomic(path) as fh:`` -- write ``path`` whole, or leave it as it was.

    Parameters
    ----------
    path : str or path-like
    mode : {"wb", "w"}
    encoding : str, optional
        Text mode only (default UTF-8).

    Raises
    ------
    PermissionError
        ``path`` is a read-only file (no write bit for us), before anything is written.
    OSError
        Whatever the writing raised, with ``filename`` set to ``path``; the old file (if
        any) is unchanged and the temporary file removed.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"`mode`: must be 'wb' or 'w', got {mode!r}")
    # A symbolic link stays a link: its target is what gets replaced.
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        st = os.stat(target)
        old_mode = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        old_mode = None
    except OSError as exc:
        raise _named(exc, target) from exc
    if old_mode is not None and stat.S_ISREG(st.st_mode) and _read_only(st):
        # os.replace would rename over it whatever its mode (and keep the mode): a file its
        # owner made read-only is refused as open(path, "w") would refuse it.
        raise PermissionError(errno.EACCES, "the file is read-only (chmod u+w to replace it)", str(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _named(exc, target) from exc
    try:
        with os.fdopen(fd, mode, **({"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, old_mode if old_mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _named(exc, target) from exc
        raise


def write_atomic(path: PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` with :func:`open_atomic`."""
    with open_atomic(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_figure(fig, path: PathLike, **savefig_kw) -> Path:
    """Save a matplotlib figure to exactly ``path`` in one atomic write, and close it.

    The suffix picks the format where matplotlib knows it (.png, .svg, .pdf, ...); PNG
    otherwise (savefig itself would append ".png" to a name without a suffix, and leave a
    partial file on failure).
    """
    import io

    import matplotlib.pyplot as plt

    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, **savefig_kw)
    finally:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())


def check_output_store(path: PathLike, *, what: str = "output") -> Path:
    """Check, before any work, that a directory store (``*.zarr``) can be written at ``path``.

    The store is built under a temporary name beside ``path`` and renamed over it, so its
    folder must exist and be writable; an existing ``path`` must be a store (one that is
    replaced), never a file or another kind of folder.

    Raises
    ------
    OutputPathError
        Empty path; a missing, non-directory or unwritable folder; ``path`` is a file, or a
        folder that holds no zarr store.
    """
    text = os.fspath(path)
    target, _ = _writable_folder(text, what)
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{what}: {text} exists and is not a directory store")
    if target.is_dir() and any(target.iterdir()) and not (target / "zarr.json").exists():
        raise OutputPathError(f"{what}: {text} is a folder that holds no zarr store; it would be replaced")
    if (target / "zarr.json").is_file() and not _written_by_us(target / "zarr.json"):
        raise OutputPathError(f"{what}: {text} holds a zarr store robatch_opt did not write; it would be replaced")
    return target


def _written_by_us(meta: Path) -> bool:
    """Whether a store's ``zarr.json`` is a robatch_opt store's (its ``format`` attribute):
    only those are replaced by a new one; another program's data never is."""
    try:
        attrs = json.loads(meta.read_text(encoding="utf-8")).get("attributes") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(attrs, dict) and str(attrs.get("format", "")).startswith("robatch_opt.")


def _named(exc: OSError, path: Path) -> OSError:
    """The same kind of OSError, naming the target (not the temporary file)."""
    if exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    return OSError(f"{path}: {exc}")


def _writable_folder(text: str, what: str) -> tuple[Path, Path]:
    """``(target, folder)`` of an output path whose folder exists and can be written."""
    if not text.strip():
        raise OutputPathError(f"{what}: the path is empty")
    target = Path(text)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise OutputPathError(f"{what}: {text}: directory {folder} does not exist")
    if not folder.is_dir():
        raise OutputPathError(f"{what}: {text}: {folder} is not a directory")
    # Try it: os.access says yes to root everywhere, also on read-only file systems.
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise OutputPathError(f"{what}: {text}: directory {folder} is not writable "
                              f"({exc.strerror or exc})") from exc
    return target, folder


def check_output_path(path: PathLike, *, inputs: Iterable[PathLike] = (), what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written as a file.

    Parameters
    ----------
    path : str or path-like
    inputs : iterable of paths
        Files the command reads; writing over one of them is refused.
    what : str
        The option's name, for the message (e.g. ``"--out"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputPathError
        Empty path, a folder, a missing or unwritable folder, a read-only file (no write
        bit for anyone), or one of ``inputs``.
    """
    text = os.fspath(path)
    if text.strip() and Path(text).is_dir():
        raise OutputPathError(f"{what}: {text} is a directory, not a file")
    target, folder = _writable_folder(text, what)
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(target.name)) + _TMP_EXTRA > name_max:
        raise OutputPathError(f"{what}: the file name is too long ({len(os.fsencode(target.name))} bytes; "
                              f"at most {name_max - _TMP_EXTRA} here, as it is first written under a "
                              "temporary name)")
    if target.exists() and not target.is_file():
        raise OutputPathError(f"{what}: {text} exists and is not a regular file")
    if target.is_file() and _read_only(target.stat()):
        # The atomic replace would succeed (it renames over the file, whatever its mode) and
        # keep the mode: a file its owner made read-only is not ours to replace.
        raise OutputPathError(f"{what}: {text} is read-only; make it writable (chmod u+w) or choose another name")
    for src in inputs:
        if src is None:
            continue
        try:
            same = target.exists() and os.path.samefile(target, src)
        except OSError:
            same = False
        if same or target.resolve() == Path(src).resolve():
            raise OutputPathError(f"{what}: {text} is also an input of this command; "
                                  "writing it would destroy the input")
    return target
