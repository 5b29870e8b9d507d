"""What the service accepts as a UID, wherever one arrives (STOW, export identifiers)."""

from __future__ import annotations

import re

# "All identifiers must be between 1 and 64 characters long, and only contain alpha numeric
# characters or the following special characters: '.', '-'." Empty components ("1..2", a
# leading or trailing dot) are refused too: they are not UIDs (PS3.5 §9.1) and "." / ".."
# must never reach a path.
_UID = re.compile(r"^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$")


def valid_uid(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64 and _UID.match(value) is not None
