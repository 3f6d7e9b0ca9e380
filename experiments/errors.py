"""Errors a person can make, reported as one line naming the field and the fix."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from a person (a flag, a grid file, a spec field).

    The CLI prints ``error: <message>`` on one line and exits with status 2,
    before any cell runs. ``field`` names what was wrong, ``fix`` what to do.
    """

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class PathUnavailable(RuntimeError):
    """A fast path that was asked for (``on``) and cannot apply here.

    Raised instead of falling back silently; callers that asked for ``auto``
    catch it and take the named fallback knowingly.
    """
