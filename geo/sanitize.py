"""Make user-supplied text safe to show in messages and to open in a spreadsheet."""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def quote_value(value: object, limit: int = 40) -> str:
    """Return a short, printable rendering of a user-supplied value for messages.

    Control characters are escaped and long values cut, so a hostile string can
    neither break a terminal nor flood a report.
    """
    text = str(value)
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    return repr(shown + ("…" if len(text) > limit else ""))


def spreadsheet_safe(value: object) -> object:
    """Return ``value`` with a leading quote if a spreadsheet would run it as a formula.

    Text starting with ``= + - @``, a tab or a carriage return is prefixed with ``'``
    (the OWASP advice for CSV injection); numbers and None pass through unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
