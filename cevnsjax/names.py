"""The one check of user-given names against the valid ones (a one-line error with the closest match)."""

from __future__ import annotations

import difflib

__all__ = ["check_known", "closest", "did_you_mean"]


def closest(name, valid, cutoff: float = 0.6) -> str | None:
    """The valid name closest to ``name`` (difflib ratio >= ``cutoff``), or None."""
    c = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=cutoff)
    return c[0] if c else None


def did_you_mean(name, valid) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or '' (to append to an error message)."""
    c = closest(name, valid)
    return f" (did you mean {c!r}?)" if c else ""


def check_known(names, valid, what: str = "parameter") -> None:
    """Raise ValueError naming the first unknown name, the closest valid one and all valid choices."""
    valid = list(valid)
    for n in ([names] if isinstance(names, str) else names):
        if n not in valid:
            c = closest(n, valid)
            hint = f" Did you mean {c!r}?" if c else ""
            raise ValueError(f"unknown {what} {n!r}.{hint} Valid choices: {', '.join(map(str, valid))}")
