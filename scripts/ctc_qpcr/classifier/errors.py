"""Errors of the site classifier: user-fixable problems are :class:`InputError` s."""

from __future__ import annotations

from ..errors import InputError


class ClassifierInputError(InputError):
    """The matrix / samples sheet / model file cannot be used for the classifier as given.

    The library does not know the file names; the adapters re-raise it naming the file
    (``exc.problem``, ``exc.hint``). Its message without a path is the problem alone.
    """

    def __init__(
        self,
        problem: str,
        hint: str = "",
        path: str | None = None,
        line: int | None = None,
        column: str | int | None = None,
    ) -> None:
        super().__init__(path, problem, hint, line=line, column=column)

    def format(self) -> str:
        if self.path is not None:
            return super().format()
        return self.problem + (f" — {self.hint}" if self.hint else "")


class MissingFeatureError(ClassifierInputError):
    """Samples given to :func:`predict` lack too many of the genes the model uses."""
