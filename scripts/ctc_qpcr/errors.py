"""Errors a lab user can act on.

Every problem with an input file is raised as :class:`InputError`, which names
the file, the line (1-based, as a text editor shows it) or sheet row, the
column, what is wrong and what to do. The workflow's adapters print the message
without a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A problem in an input file that the user must fix.

    Parameters
    ----------
    path:
        The file, as the user gave it.
    problem:
        What is wrong, in the lab's words.
    hint:
        What to do about it.
    line:
        1-based line number in the file (as shown by a text editor), if known.
    column:
        Column name (or 1-based number) if known.
    """

    def __init__(
        self,
        path: str | None,
        problem: str,
        hint: str = "",
        line: int | None = None,
        column: str | int | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        self.hint = hint
        self.line = line
        self.column = column
        super().__init__(self.format())

    def format(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!s}"
        text = f"{where}: {self.problem}"
        if self.hint:
            text += f" — {self.hint}"
        return text


class ConfigError(ValueError):
    """A problem with config/config.yaml or a combination of settings."""


class OutputError(RuntimeError):
    """A result file could not be written (disk full, quota): names the file and what to do."""

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.path}: {problem}" + (f" — {hint}" if hint else ""))


#: errno values meaning "the disk (or the quota) is full"
DISK_FULL = (28, 122)  # ENOSPC, EDQUOT (Linux)


def disk_full(path: str) -> OutputError:
    """The error for a write that ran out of space on ``path``'s disk."""
    return OutputError(
        path,
        "no space left on the disk (or quota) while writing this file",
        "free space on the disk holding results/ (or raise the quota), then re-run: "
        "finished tables are kept and the partial file was removed",
    )
