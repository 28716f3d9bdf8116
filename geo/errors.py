"""Errors that carry a message meant for the person who supplied the input."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file, row or field and what to do about it.

    The command line prints it as one line and exits with code 2; the dashboard shows
    it as a message on the page. Nothing already stored is changed when it is raised.
    """
