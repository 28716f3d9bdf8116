"""Errors that carry a message meant for the person who supplied the input."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file, row or field and what to do about it.

    The command line prints it as one line and exits with code 2; the dashboard shows
    it as a message on the page. Nothing already stored is changed when it is raised.
    """


def one_line(exc: BaseException) -> str:
    """Return an exception's message on one line (library messages may hold line breaks).

    The exception's type names it when it has no message.
    """
    return " ".join(str(exc).split()) or type(exc).__name__
