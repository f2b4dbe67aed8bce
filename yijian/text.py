"""Free text people type — descriptions, addresses, names, replies — kept as typed, except
what no database and no page should hold.

PostgreSQL cannot store NUL in text, UTF-8 cannot encode half a surrogate pair (JSON can
carry one as ``\\ud800``), and the other C0/C1 control characters are never typed by a
person but can corrupt logs, CSV exports and terminals. Such text is refused with a reason
rather than silently changed, so what is stored is what was sent. Markup and SQL are just
text: pages escape it and queries bind it.
"""

from __future__ import annotations

import re

# Tab, newline and carriage return stay: people paste multi-line text.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_free_text(value: str | None) -> str | None:
    """Trimmed text, None when blank; ValueError when it holds characters nobody types."""
    if value is None:
        return None
    if _UNSTORABLE.search(value):
        raise ValueError("text holds control characters or broken Unicode; remove them")
    cleaned = value.strip()
    return cleaned or None
