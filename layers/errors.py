"""The one exception family of civicmap.

Every error a user can cause is a :class:`CivicmapError`.  Messages name the file,
row, field, the value received and what was expected, so that a bureau user can
fix the input without reading code.  The CLI prints them without a traceback and
exits non-zero; the web layer maps them to 4xx responses with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class CivicmapError(Exception):
    """Base class for every error civicmap raises on purpose."""


class CRSError(CivicmapError):
    """An unknown, missing or unsuitable coordinate reference system / datum."""


class RuleError(CivicmapError):
    """A rule profile or setting that cannot be used."""


class WorkspaceError(CivicmapError):
    """A workspace that is missing, locked or unreadable."""


class Message(str):
    """An English message that keeps its template and values, so that a page can show it translated.

    ``Message("must be ≥ {low}", low=5)`` is the string ``"must be ≥ 5"`` everywhere (the CLI,
    the rejected-rows file, the API's ``expected``); the web pages look ``template`` up in
    their catalogue and fill in ``params`` (see ``webmap.uploads.problem_text``).  Templates
    are extracted for translation with the keyword ``Message`` (``webmap/babel.cfg``).
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, **params: object) -> Message:
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template = template
        text.params = params
        return text

    def __reduce__(self) -> tuple:  # pickles (and deep-copies) with its template
        return (_message, (self.template, self.params))


def _message(template: str, params: dict[str, object]) -> Message:
    return Message(template, **params)


@dataclass(frozen=True)
class Problem:
    """One problem found in one place of an input file.

    ``row`` is the 1-based data row as a user sees it in a spreadsheet
    (header excluded), or ``None`` for a file-level problem.
    """

    source: str
    row: int | None
    field: str | None
    value: object
    expected: str

    def __str__(self) -> str:
        where = self.source
        if self.row is not None:
            where += f" row {self.row}"
        if self.field is None:
            return f"{where}: {self.expected}"
        return f"{where}: {self.field} = {self.value!r}: {self.expected}"


@dataclass
class LayerError(CivicmapError):
    """A layer file with one or more problems; all of them are listed.

    Validation collects every problem first and raises once.
    """

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [str(p) for p in self.problems[:50]]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problem(s)")
        head = f"{len(self.problems)} problem(s) found"
        return head + ":\n" + "\n".join(shown)

    @classmethod
    def single(
        cls,
        source: str,
        expected: str,
        *,
        row: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> LayerError:
        """One problem, as an error ready to raise."""
        return cls([Problem(source, row, field, value, expected)])
