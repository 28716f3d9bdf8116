"""Errors that carry a message meant for the person who supplied the input."""

from __future__ import annotations

import re


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


# GDAL's virtual paths ("/vsizip/{/folder/a.zip}/member") and plain folder paths: two or
# more "/"-separated parts not glued to a word before them ("and/or" stays).
_GDAL_VIRTUAL = re.compile(r"/vsi\w+/\{([^}]*)\}")
_FOLDERED_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/]+/)+[^\s'\"/]*")
# GDAL's advice for programmers: a driver prefix, a configuration option.
_GDAL_ADVICE = re.compile(
    r";? It might help to specify the correct driver.*$|\s*Set \w+ config option[^.]*\."
)


def library_reason(exc: BaseException) -> str:
    """Return a library's message about a file on one line, in the terms of who supplied it.

    Paths are cut to their file name: an upload lives in a server folder its visitor
    should not see (and cannot act on). GDAL's advice about driver prefixes and
    configuration options is for programmers, so it is left out.
    """
    text = _GDAL_ADVICE.sub("", one_line(exc))
    text = _GDAL_VIRTUAL.sub(lambda match: match.group(1).rsplit("/")[-1], text)
    return _FOLDERED_PATH.sub(lambda match: match.group().rstrip("/").rsplit("/")[-1], text)
