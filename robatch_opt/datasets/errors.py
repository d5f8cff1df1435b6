"""Errors of the dataset loaders: one class per kind of bad input, each naming file, row and column.

Every class is a :class:`robatch_opt.errors.FormatError` (so a ``ValueError``): callers can
catch ``ValueError`` generically, the CLI prints the message on one line.
"""

from __future__ import annotations

from ..errors import FormatError

__all__ = ["DatasetError", "MissingFileError", "MissingColumnError", "UnknownColumnError",
           "PromptFieldError", "OutcomeRangeError", "CostValueError", "UnknownPriceError",
           "DuplicateQueryError", "InconsistentDataError", "MalformedRowError", "EmptyFieldError"]


class DatasetError(FormatError):
    """A routing-data file (or a :class:`RoutingData` built by hand) is malformed.

    Attributes
    ----------
    source : str or None
        The file at fault.
    row : int or None
        0-based data row (the header is not a row; in JSON Lines, the line number minus 1).
    column : str or None
        The column (or JSON field) at fault.
    line : int or None
        1-based line of ``source`` where the row starts (a CSV cell may span lines), when the
        error came from reading a file; the message then begins ``file:line:``, as an
        editor or terminal opens it.
    detail : str
        What is wrong.
    """

    def __init__(self, message: str, *, source=None, row: int | None = None, column: str | None = None,
                 line: int | None = None):
        self.source = None if source is None else str(source)
        self.row = row
        self.column = column
        self.line = line
        self.detail = message
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column `{column}`")
        at = "" if self.source is None else self.source if line is None else f"{self.source}:{line}"
        prefix = (f"{at}: " if at else "") + (", ".join(where) + ": " if where else "")
        super().__init__(prefix + message)

    def at_line(self, line: int) -> "DatasetError":
        """The same error (same class) with the file's line number added.

        Parameters
        ----------
        line : int
            1-based line of :attr:`source` where the row starts.

        Returns
        -------
        DatasetError
            A new error of this class; its message begins ``source:line:``.
        """
        return type(self)(self.detail, source=self.source, row=self.row, column=self.column, line=line)


class MissingFileError(DatasetError):
    """A file or folder the loader needs does not exist."""


class MissingColumnError(DatasetError):
    """A required column (or JSON field) is absent."""


class EmptyFieldError(MissingColumnError):
    """A required column that is present but empty in a row (a query id, a task name). A
    :class:`MissingColumnError` too, so handlers written for that still catch it."""


class UnknownColumnError(DatasetError):
    """A column the format does not define (a typo would otherwise be silently ignored)."""


class PromptFieldError(DatasetError):
    """A prompt cell that cannot be read (RouterBench: not a Python list literal of one string)."""


class OutcomeRangeError(DatasetError):
    """An outcome that is not a number in [0, 1] (or not True/False where the format says so)."""


class CostValueError(DatasetError):
    """A cost or token count that is negative, not a number, or not finite."""


class UnknownPriceError(DatasetError):
    """A model that the price table does not list."""


class DuplicateQueryError(DatasetError):
    """Two rows with the same query id (in one file, across files, or across concatenated sources)."""


class InconsistentDataError(DatasetError):
    """Sources that disagree: different model columns per file, different prices or system
    prompts for the same model or task, arrays of the wrong shape."""


class MalformedRowError(DatasetError):
    """A row that cannot be parsed at all (JSON Lines: not a JSON object)."""
