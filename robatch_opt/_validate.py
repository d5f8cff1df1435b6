"""Typed input checks shared by every loader and public constructor, and readable numbers.

One mechanism for the whole package: a number is an ``int`` or a ``float`` (or a NumPy
integer or floating scalar), never a string, a boolean or null; an integer field holds an
integer; an array holds numbers in rows of equal length. Each check raises the caller's
error class through an *error factory* ``error(field, index, message) -> Exception``, so the
constructors raise :class:`~robatch_opt.errors.InstanceError`, :func:`evaluate` raises
:class:`~robatch_opt.errors.AssignmentError` and the file readers raise
:class:`~robatch_opt.errors.FormatError` naming the file, all with the same one-line text::

    `utility[17, 3]`: must be a number, got a string '0.5'

Two strictnesses for integers. Files (``strict=True``) must hold integer literals: the
writers never write ``1.0`` for an index, so a float there is a mistake. Python callers
(``strict=False``) may pass floats with an integral value (a NumPy float array of indices is
common); ``0.7`` is refused either way.

Speed: a NumPy array is checked by its dtype alone (O(1)); Python lists by a census of the
element types (``set(map(type, ...))``, which runs at C speed: about 35 ns per element), and
only when the census finds a stranger are the elements walked to name the first one.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Sequence

import numpy as np

from .errors import AssignmentError, FormatError, InstanceError

__all__ = ["ErrorFactory", "fmt_num", "fmt_index", "describe", "number", "optional_number", "integer",
           "string", "numeric_array", "instance_errors", "assignment_errors", "format_errors"]

#: ``error(field, index, message)``: the exception to raise for a bad value of ``field`` at
#: ``index`` (a tuple, empty for the field as a whole).
ErrorFactory = Callable[[str, tuple, str], Exception]

_INT64_MAX = 2 ** 63 - 1
_SHORT_TEXT = 40


# -------------------------------------------------------------------------- error factories
def fmt_index(idx: Sequence[int]) -> str:
    """``(3, 1)`` -> ``"[3, 1]"``; ``()`` -> ``""``."""
    return "[" + ", ".join(str(int(v)) for v in idx) + "]" if len(idx) else ""


def instance_errors(field: str, idx: tuple, message: str) -> InstanceError:
    """Error factory of the public constructors."""
    return InstanceError(field + fmt_index(idx), message)


def assignment_errors(field: str, idx: tuple, message: str) -> AssignmentError:
    """Error factory of :func:`robatch_opt.evaluate`."""
    return AssignmentError(field + fmt_index(idx), message)


def format_errors(source: str, what: str = "") -> ErrorFactory:
    """Error factory of a file reader: ``FormatError("<source>: <what>`field[i]`: message")``."""
    prefix = f"{source}: {what}" if source else what

    def make(field: str, idx: tuple, message: str) -> FormatError:
        return FormatError(f"{prefix}`{field}{fmt_index(idx)}`: {message}")
    return make


# ------------------------------------------------------------------------------ formatting
def fmt_num(x, *, apart_from: float | None = None) -> str:
    """A number as short readable text: ``:.6g``, integers exact up to 15 digits.

    Never a NumPy repr (``np.float64(1.5)``) and never hundreds of digits. With
    ``apart_from`` (the bound a value broke), a float that would print as the bound itself
    (``1.0000001`` beside 1) is printed in full instead.

    Examples
    --------
    >>> fmt_num(1.5), fmt_num(1.0), fmt_num(1e300), fmt_num(10 ** 400), fmt_num(np.int64(7))
    ('1.5', '1.0', '1e+300', '1e+400', '7')
    >>> fmt_num(1.0000001), fmt_num(1.0000001, apart_from=1)
    ('1.0', '1.0000001')
    >>> fmt_num(0.77388188, apart_from=0.7738819334)
    '0.77388188'
    """
    if isinstance(x, np.generic):
        x = x.item()
    if apart_from is not None and isinstance(x, float) and math.isfinite(x) and x != apart_from \
            and (float(fmt_num(x)) == apart_from or fmt_num(x) == fmt_num(float(apart_from))):
        return repr(x)                            # both would print alike (0.773882 and 0.773882)
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        if abs(x) < 10 ** 15:
            return str(x)
        try:
            return f"{float(x):.6g}"
        except OverflowError:                     # beyond float range: mantissa and exponent by hand
            digits = str(abs(x))
            frac = digits[1:6].rstrip("0")
            return f"{'-' if x < 0 else ''}{digits[0]}{'.' * bool(frac)}{frac}e+{len(digits) - 1}"
    if isinstance(x, float):
        text = f"{x:.6g}"
        # 1.0 prints as "1": keep the point so that a float reads as a float.
        return text if any(c in text for c in ".ein") else text + ".0"
    return describe(x)


def describe(x) -> str:
    """What a value is, in a few words: ``a string '0.5'``, ``a boolean (true)``, ``null``, ``1.5``."""
    if x is None:
        return "null"
    if isinstance(x, (bool, np.bool_)):
        return f"a boolean ({'true' if x else 'false'})"
    if isinstance(x, (int, float, np.integer, np.floating)):
        return fmt_num(x)
    if isinstance(x, str):
        text = x if len(x) <= _SHORT_TEXT else x[:_SHORT_TEXT] + "..."
        return f"a string {text!r}"
    if isinstance(x, bytes):
        return f"bytes of length {len(x)}"
    if isinstance(x, dict):
        return f"an object with {len(x)} key{'s' * (len(x) != 1)}"
    if isinstance(x, (list, tuple)):
        return f"a list of {len(x)} item{'s' * (len(x) != 1)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    name = type(x).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


# -------------------------------------------------------------------------- type predicates
_NUMBER_TYPES: dict[type, bool] = {}
_INTEGER_TYPES: dict[type, bool] = {}


def _is_number_type(t: type) -> bool:
    ok = _NUMBER_TYPES.get(t)
    if ok is None:
        ok = (issubclass(t, (int, float, np.integer, np.floating))
              and not issubclass(t, (bool, np.bool_)))
        _NUMBER_TYPES[t] = ok
    return ok


def _is_integer_type(t: type) -> bool:
    ok = _INTEGER_TYPES.get(t)
    if ok is None:
        ok = issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_))
        _INTEGER_TYPES[t] = ok
    return ok


def _is_row(x) -> bool:
    return isinstance(x, (list, tuple, np.ndarray))


# --------------------------------------------------------------------------------- scalars
def number(x, field: str, error: ErrorFactory = instance_errors, idx: tuple = ()) -> float:
    """``x`` as a float if it is a number (not a string, boolean or null); else raise."""
    if _is_number_type(type(x)):
        try:
            return float(x)
        except OverflowError:
            raise error(field, idx, f"is out of the floating-point range, got {fmt_num(x)}") from None
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iuf":
        return float(x)
    raise error(field, idx, f"must be a number, got {describe(x)}")


def nonnegative(x, field: str, unit: str = "", error: ErrorFactory = instance_errors) -> float:
    """``x`` as a float if it is a finite number >= 0 (e.g. a budget in ``unit`` USD); else raise."""
    v = number(x, field, error)
    if not math.isfinite(v) or v < 0:
        raise error(field, (), f"must be a finite number >= 0{' ' + unit if unit else ''}, got {fmt_num(v)}")
    return v


def optional_number(x, field: str, error: ErrorFactory = instance_errors) -> float | None:
    """``None`` stays ``None``; anything else must be a number."""
    return None if x is None else number(x, field, error)


def integer(x, field: str, error: ErrorFactory = instance_errors, *, strict: bool = False,
            idx: tuple = ()) -> int:
    """``x`` as an int if it is an integer (with ``strict=False`` also an integral float); else raise."""
    t = type(x)
    if _is_integer_type(t):
        return int(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iu":
        return int(x)
    if not strict and _is_number_type(t):
        f = float(x)
        if np.isfinite(f) and f == round(f):
            return int(f)
    raise error(field, idx, f"must be an integer, got {describe(x)}")


def string(x, field: str, error: ErrorFactory = instance_errors, *, nonempty: bool = True) -> str:
    """``x`` if it is a (non-empty) string; else raise."""
    if not isinstance(x, str):
        raise error(field, (), f"must be a string, got {describe(x)}")
    if nonempty and not x:
        raise error(field, (), "must be a non-empty string")
    return x


def did_you_mean(key, known, prefix: str = "") -> str:
    """`` (did you mean `<prefix><name>`?)`` for the name of ``known`` closest to ``key``, or ""."""
    import difflib

    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
    return f" (did you mean `{prefix}{close[0]}`?)" if close else ""


def no_unknown_keys(d: dict, known, source: str, what: str, *, prefix: str = "") -> None:
    """Refuse a key of a file's object that ``what`` (a format) does not define, naming the
    closest known one: a typo (``utilty``) would otherwise be ignored silently."""
    for key in d:
        if key not in known:
            raise FormatError(f"{source}: `{prefix}{key}` is not a field of {what}{did_you_mean(key, known, prefix)}")


# ---------------------------------------------------------------------------------- arrays
def numeric_array(value: Any, field: str, error: ErrorFactory = instance_errors, *,
                  ndim: int | tuple[int, ...] = 1, integer: bool = False,
                  strict: bool = False) -> np.ndarray:
    """Check that ``value`` holds numbers (in rows of equal length) and return it as an array.

    Parameters
    ----------
    value : ndarray, list or tuple (possibly nested), or another array-like
    field : str
        Named in errors, with the index of the first offending entry.
    error : ErrorFactory
    ndim : int or tuple of int
        Nesting depths (array dimensions) allowed: 1 for a list of numbers, 2 for a list of
        rows. The exact shape is left to the caller.
    integer : bool
        Entries must be integers; the result is int64 (float64 otherwise).
    strict : bool
        With ``integer``: refuse floats even when integral (the file readers' rule).

    Returns
    -------
    ndarray
        From a list: a new float64 array (int64 with ``integer``). A NumPy array of a numeric
        dtype is returned as is (with ``integer``, a float array as a new int64 array).

    Notes
    -----
    Strings, booleans, null, objects and complex numbers are refused, as are ragged rows
    (the first row whose length differs from row 0 is named).
    """
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        return _checked_ndarray(value, field, error, dims, integer, strict)
    if isinstance(value, np.ndarray):               # object array: look at its elements
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return _checked_list(value, field, error, dims, integer, strict)
    if isinstance(value, (str, bytes, dict, bool, np.bool_)) or value is None or _is_number_type(type(value)):
        raise error(field, (), f"must be a list of {'integers' if integer else 'numbers'}, got {describe(value)}")
    # Another array-like (a pandas Series, a memoryview, a range...): NumPy's view of it.
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise error(field, (), f"must be an array of numbers, got {describe(value)}") from exc
    if arr.dtype.kind == "O" and arr.ndim == 0:
        # NumPy wrapped the object itself (a Plan, a generator, a set): not an array of
        # numbers, and looking at its "elements" would hand back the same object forever.
        raise error(field, (), f"must be a list or array of {'integers' if integer else 'numbers'}, "
                               f"got {type(value).__name__}")
    return numeric_array(arr, field, error, ndim=ndim, integer=integer, strict=strict)


_KIND_WORDS = {"b": "booleans", "U": "strings", "S": "bytes", "c": "complex numbers", "M": "datetimes",
               "m": "time deltas", "V": "raw records"}


def _checked_ndarray(arr: np.ndarray, field: str, error: ErrorFactory, dims: tuple[int, ...], integer: bool,
                     strict: bool) -> np.ndarray:
    kind = arr.dtype.kind
    allowed = "iu" if integer and strict else "iuf"
    if kind not in allowed:
        what = "integers" if integer else "real numbers"
        got = "floats" if kind == "f" else _KIND_WORDS.get(kind, "values")
        raise error(field, (), f"must hold {what}, got an array of {got} (dtype {arr.dtype})")
    if arr.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in sorted(dims))
        raise error(field, (), f"must be {want}, got an array of shape {arr.shape}")
    if not integer:
        return arr
    if kind == "f":
        return _integral(arr, field, error)
    if kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > _INT64_MAX:
        i = _first(arr > _INT64_MAX)
        raise error(field, i, f"is too large for an index, got {fmt_num(arr[i])}")
    return arr


def _integral(arr: np.ndarray, field: str, error: ErrorFactory) -> np.ndarray:
    """A float array whose entries are all integers (and fit int64), as int64."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) > _INT64_MAX)
    if bad.any():
        i = _first(bad)
        x = float(arr[i])
        what = "is too large for an index" if np.isfinite(x) and x == round(x) else "must be an integer"
        raise error(field, i, f"{what}, got {fmt_num(x)}")
    return arr.astype(np.int64)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    flat = int(np.argmax(mask.ravel()))
    return tuple(int(v) for v in np.unravel_index(flat, mask.shape))


def _checked_list(value: list | tuple, field: str, error: ErrorFactory, dims: tuple[int, ...],
                  integer: bool, strict: bool) -> np.ndarray:
    n = len(value)
    if n == 0:
        return np.zeros(0, np.int64 if integer else np.float64)
    # How deep is it? The first entry says; the census then demands the same of every entry.
    # A depth the field does not take is reported at the first entry (as a mistyped entry).
    depth = 2 if _is_row(value[0]) else 1
    if depth not in dims:
        depth = dims[0]
    if depth == 1:
        types = _census(value, field, error, integer, strict, ())
    else:
        row_types = set(map(type, value))
        if not all(t in (list, tuple) or issubclass(t, np.ndarray) for t in row_types):
            i = next(i for i, r in enumerate(value) if not _is_row(r))
            raise error(field, (i,), f"must be a row (a list of numbers), got {describe(value[i])}")
        width = len(value[0])
        if len(set(map(len, value))) > 1:
            i = next(i for i, r in enumerate(value) if len(r) != width)
            m = len(value[i])
            raise error(field, (i,), f"has {m} entr{'y' if m == 1 else 'ies'}, but row 0 has {width}")
        types = set(map(type, itertools.chain.from_iterable(value)))
        if not _types_ok(types, integer, strict):
            for i, row in enumerate(value):
                _census(row, field, error, integer, strict, (i,))
    # Integers convert exactly to int64; floats (allowed for integers only when not strict)
    # go through float64 and must then be integral.
    all_int = integer and _types_ok(types, True, True)
    dtype = np.int64 if all_int else np.float64
    try:
        arr = np.array(value, dtype=dtype)
    except OverflowError:                         # a Python int beyond int64 / float range
        limit = _INT64_MAX if all_int else 1.7976931348623157e308
        flat = value if depth == 1 else list(itertools.chain.from_iterable(value))
        pos = next(p for p, v in enumerate(flat) if abs(v) > limit)
        idx = (pos,) if depth == 1 else divmod(pos, len(value[0]))
        raise error(field, idx, f"is too large{' for an index' if integer else ''}, got {fmt_num(flat[pos])}") from None
    if integer and not all_int:
        return _integral(arr, field, error)
    return arr


def _types_ok(types: set, integer: bool, strict: bool) -> bool:
    check = _is_integer_type if integer and strict else _is_number_type
    return all(check(t) for t in types)


def _census(seq, field: str, error: ErrorFactory, integer: bool, strict: bool, prefix: tuple) -> set:
    """The set of types in ``seq``; raise at its first entry of a type the field does not take."""
    types = set(map(type, seq))
    if _types_ok(types, integer, strict):
        return types
    check = _is_integer_type if integer and strict else _is_number_type
    for j, v in enumerate(seq):
        if not check(type(v)):
            want = "an integer" if integer else "a number"
            raise error(field, prefix + (j,), f"must be {want}, got {describe(v)}")


#: What to do instead, for the usual things passed where an Instance belongs.
_NOT_AN_INSTANCE_HINTS = {
    "RoutingData": " (it holds data: build an instance with data.instance(utility))",
    "ChunkedInstance": " (a .zarr store: solve it with a Dask client, or read it whole with .to_instance())",
}


def not_an_instance(x) -> str:
    """``"got <type> (hint)"`` for an error about ``x`` passed where an Instance belongs."""
    kind = type(x).__name__
    return f"got {kind}{_NOT_AN_INSTANCE_HINTS.get(kind, '')}"


def check_instance(x, field: str = "inst") -> None:
    """Raise InstanceError unless ``x`` is a :class:`robatch_opt.Instance`, with a hint for the
    usual mix-ups (a ``RoutingData`` of real outcomes, a chunked ``.zarr`` store)."""
    from .instance import Instance

    if not isinstance(x, Instance):
        raise InstanceError(field, f"must be a robatch_opt.Instance, {not_an_instance(x)}")
