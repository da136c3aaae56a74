"""The one exception type users see.

Every bad input (missing or corrupt file, wrong architecture, empty data folder,
NaN loss, bad flag value) raises :class:`LandscapeError` with a one-line message
that names the problem. The CLI prints that line and exits non-zero; it never
shows a traceback for these.
"""


class LandscapeError(Exception):
    """A user-facing error whose ``str()`` is one line naming the problem."""
