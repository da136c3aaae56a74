"""The one exception type users see.

Every bad input (missing or corrupt file, wrong architecture, empty data folder,
NaN loss, bad parameter value) raises :class:`LandscapeError` with a one-line
message that names the problem. The library names its own parameters
(``top_k must be >= 1``); the CLI prints that line with each parameter
replaced by its flag (``error: --top-k must be >= 1``) and exits with code 2;
it never shows a traceback for these.
"""

from __future__ import annotations

import re

_LEADING_NAME = re.compile(r"^([a-z][a-z0-9_]*)(?: \([^)]*\))? (?:must|applies|gives) ")


class LandscapeError(Exception):
    """A user-facing error whose ``str()`` is one line naming the problem.

    ``params``: the parameter names the message mentions, so the CLI can show
    them as flags; by default the message's first word when it starts with a
    lower-case identifier followed by ``must``, ``applies`` or ``gives``
    (``"top_k must be >= 1"``).
    """

    def __init__(self, message: str = "", params: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        if params is None:
            match = _LEADING_NAME.match(message)
            params = (match.group(1),) if match else ()
        self.params = tuple(params)

    def __reduce__(self):
        return type(self), (str(self), self.params)
