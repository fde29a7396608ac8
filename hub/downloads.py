"""Headers for a stored file served to a caller: always a download, never a page.

Attachments come from other systems and the names and types they declare are theirs: a file
called `x.html` declared `text/html`, or an SVG, would run its script in the hub's origin if a
browser rendered it. So every stored file goes out with `Content-Disposition: attachment`
(the name kept in `filename*`, with a plain-ASCII `filename` beside it),
`X-Content-Type-Options: nosniff`, a sandboxing `Content-Security-Policy`, and a
`Content-Type` from a short allow-list of types browsers do not run (PDF, raster images,
office documents, archives, CSV); any other declared type goes out as
`application/octet-stream`. The declared type itself is kept where it was stored.
This module must never read or write a file.
"""

from __future__ import annotations

import re
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"
SAFE_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/tiff",
        "image/webp",
        "text/csv",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._-]+")


def safe_content_type(declared: str | None) -> str:
    """`declared` (its parameters dropped) when a browser will not run it, else octet-stream."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else OCTET_STREAM


def download_headers(
    name: str, declared_type: str | None, charset: str | None = None
) -> dict[str, str]:
    """The headers of a stored file `name` (a download, whatever it claims to be)."""
    plain = _NOT_PLAIN.sub("_", name).strip("._") or "download"
    ctype = safe_content_type(declared_type)
    if charset and ctype == "text/csv":
        ctype += f"; charset={charset}"
    return {
        "Content-Type": ctype,
        "Content-Disposition": f'attachment; filename="{plain[:150]}"; '
        f"filename*=UTF-8''{quote(name[:200], safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
