"""Errors and problem reports of the referring data layer.

Loaders raise :class:`DatasetError` for anything that stops them; every message starts with the
file concerned and says what is wrong with it. The dataset check collects :class:`Problem`\\ s
instead of raising, so that a user sees every broken file at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from btdnet.errors import DatasetError  # re-exported: defined with the other shared errors

# kind -> what it means. Kinds in WARNING_KINDS leave a data set usable; every other kind does not.
PROBLEM_KINDS: dict[str, str] = {
    "missing_file": "an index file or folder of the layout is absent",
    "unreadable_file": "an index file cannot be parsed or has the wrong structure",
    "unsafe_file": "a pickle asks to run or import code and was refused",
    "unknown_split": "the requested split does not occur in the index",
    "unknown_annotation": "a referring expression points to an annotation that does not exist",
    "bad_annotation": "an annotation has no usable segmentation",
    "missing_image": "an image file named by the index is absent",
    "unreadable_image": "an image file cannot be decoded",
    "missing_mask": "a mask file named by the index is absent",
    "unreadable_mask": "a mask file cannot be decoded",
    "bad_expression": "a referring expression is empty after stripping whitespace",
    "duplicate_id": "an identifier occurs more than once",
    "size_mismatch": "a mask's size differs from its image's (the mask is resized, nearest)",
    "empty_mask": "a target mask has no foreground pixel",
    "inconsistent_target": "a ref's no_target flag and its ann_id disagree (ann_id is used)",
    "overlapping_parts": (
        "an annotation's RLE parts overlap (the LAVT protocol reads the overlap as background, "
        "as the LAVT family does; the original protocol takes the union)"
    ),
}
WARNING_KINDS: frozenset[str] = frozenset(
    {"size_mismatch", "empty_mask", "duplicate_id", "inconsistent_target", "overlapping_parts"}
)


class UnsafePickleError(DatasetError):
    """A pickle file asked for a global (a class or a callable) and was refused."""


@dataclass(frozen=True)
class Problem:
    """One finding about a data set file (``kind`` is a key of :data:`PROBLEM_KINDS`)."""

    kind: str
    file: str
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}; known: {sorted(PROBLEM_KINDS)}")

    @property
    def is_warning(self) -> bool:
        """True when the problem leaves the data set usable."""
        return self.kind in WARNING_KINDS

    def message(self) -> str:
        """The problem as one line: ``<file>: <detail>``."""
        return f"{self.file}: {self.detail}"

    def as_dict(self) -> dict[str, str]:
        """The JSON form ``{"kind", "file", "detail"}``."""
        return asdict(self)


def error_for(problem: Problem) -> DatasetError:
    """The exception a strict loader raises for a problem (``UnsafePickleError`` when unsafe)."""
    kind = UnsafePickleError if problem.kind == "unsafe_file" else DatasetError
    return kind(problem.message())


class ProblemLog:
    """Collects problems while an index is read.

    With ``strict=True`` (the default for training) :meth:`raise_if_fatal` turns the first fatal
    problem into a :class:`DatasetError`; :meth:`fatal` raises at once for problems after which
    reading cannot go on. With ``strict=False`` (the dataset check) everything is only recorded.
    """

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.problems: list[Problem] = []

    def add(self, kind: str, file: str | Path, detail: str) -> Problem:
        """Record a problem and return it."""
        problem = Problem(kind, str(file), detail)
        self.problems.append(problem)
        return problem

    def fatal(self, kind: str, file: str | Path, detail: str) -> None:
        """Record a problem after which the index cannot be read; raises when strict."""
        problem = self.add(kind, file, detail)
        if self.strict:
            raise error_for(problem)

    def count(self, kind: str) -> int:
        """Number of recorded problems of one kind."""
        return sum(1 for problem in self.problems if problem.kind == kind)

    def raise_if_fatal(self) -> None:
        """When strict, raise for the first non-warning problem, saying how many more there are."""
        if not self.strict:
            return
        errors = [problem for problem in self.problems if not problem.is_warning]
        if not errors:
            return
        first = errors[0]
        same_kind = sum(1 for problem in errors if problem.kind == first.kind) - 1
        others = len(errors) - 1 - same_kind
        extra = []
        if same_kind:
            extra.append(f"{same_kind} more {first.kind} problem(s)")
        if others:
            extra.append(f"{others} other problem(s)")
        suffix = (
            f" ({', '.join(extra)}; run scripts/check_dataset.py for the list)" if extra else ""
        )
        error = error_for(first)
        raise type(error)(first.message() + suffix)
