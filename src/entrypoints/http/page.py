"""The chat page served at `GET /` to browsers.

The page (``page/chat.html``, package data: inline CSS and script, no
dependencies) is read once per app and kept on ``app.state``; its
Content-Security-Policy allows exactly its own inline script and style (by
hash) and connections to its own origin. It sets no ``X-Frame-Options`` and no
``frame-ancestors``, so it works inside a Hugging Face Space's iframe.

Content negotiation follows the Accept header's q-values: the page goes only to
a client that prefers ``text/html`` strictly over ``application/json``. No
Accept header, ``*/*`` alone or a tie all get the JSON status, so API clients
see no change.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

RESOURCE = "chat.html"
ADMIN_RESOURCE = "admin.html"  # GET /admin: the insights page (the key entered by hand)

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class ChatPage:
    html: bytes
    csp: str

    def response(self) -> HTMLResponse:
        return HTMLResponse(
            self.html,
            headers={
                "Vary": "Accept",
                "Content-Security-Policy": self.csp,
                "Cache-Control": "no-cache",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )


def load(site: str | None = None, resource: str = RESOURCE) -> ChatPage:
    """Read the page from the installed package and hash its inline blocks. ``site``
    (e.g. ``https://book.example``) is the default base of the source links, which a
    visitor's ``?site=`` overrides; without it links are the routes as given.
    ``resource``: another page of the package (``ADMIN_RESOURCE``)."""
    text = resources.files("entrypoints.http").joinpath("page", resource).read_text("utf-8")
    if site:
        text = text.replace('data-site=""', f'data-site="{html.escape(site, quote=True)}"', 1)
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(text):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    scripts = " ".join(hashes["script"]) or "'none'"
    styles = " ".join(hashes["style"]) or "'none'"
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return ChatPage(text.encode("utf-8"), csp)


def install(app: FastAPI, site: str | None = None) -> ChatPage:
    """Load the page onto ``app.state`` (call it from ``create_app``)."""
    page: ChatPage = load(site)
    app.state.chat_page = page
    return page


def for_app(app: FastAPI) -> ChatPage:
    """The app's page: the one ``install`` loaded, else loaded now, once."""
    page: ChatPage | None = getattr(app.state, "chat_page", None)
    return page if page is not None else install(app)


def admin_for_app(app: FastAPI) -> ChatPage:
    """The app's insights page, loaded once."""
    page: ChatPage | None = getattr(app.state, "admin_page", None)
    if page is None:
        page = app.state.admin_page = load(resource=ADMIN_RESOURCE)
    return page


def prefers_html(accept: str | None) -> bool:
    """True when the Accept header ranks text/html strictly above application/json."""
    if not accept:
        return False
    ranges = list(_media_ranges(accept))
    return _quality(ranges, "text", "html") > _quality(ranges, "application", "json")


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    for item in _split(accept, ","):
        media, *params = (p.strip() for p in _split(item, ";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                parsed = _qvalue(value.strip())
                if parsed is None:
                    break
                q = parsed
        else:
            out.append((kind, sub, q))
    return out


_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def _qvalue(value: str) -> float | None:
    """RFC 9110 qvalue (0 to 1, at most three decimals); None when malformed."""
    return float(value) if _QVALUE.match(value) else None


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double-quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _quality(ranges: list[tuple[str, str, float]], kind: str, sub: str) -> float:
    """q of the most specific range that matches ``kind/sub`` (0 when none does)."""
    best, specificity = 0.0, -1
    for r_kind, r_sub, q in ranges:
        if r_kind == kind and r_sub == sub:
            rank = 2
        elif r_kind == kind and r_sub == "*":
            rank = 1
        elif r_kind == "*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = q, rank
    return best
