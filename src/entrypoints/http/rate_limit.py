"""Rate limits for the HTTP routes: named policies (``chat``, ``transforms``, ``sign-in``,
``sign-in-email``), each a count per period, keyed by the signed-in user when there is
one and by the client address otherwise. Over a limit the route answers 429
``{"detail": ...}`` with ``Retry-After`` (whole seconds).

The counting itself is :mod:`entrypoints.http.rate_limiter`. A single process counts
in its memory; with ``WORKERS`` > 1 the worker processes of one container count together
in a SQLite file of DATA_DIR (:mod:`adapters.rate_limits.sqlite`), so together they admit
a policy's rate, not N times it. Replicas (separate containers) still count on their own:
N of them admit up to N times a policy's rate. ``hit`` never awaits: call it from the
event loop (the shared file's worst case is its 50 ms lock timeout, then it admits).

This module does not use ``from __future__ import annotations``: FastAPI reads the
annotations of the dependency that :func:`limit` builds in its closure, and strings
naming a closure's local could not be resolved.
"""

import functools
import hashlib
import ipaddress
import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request

from entrypoints.http.rate_limiter import RateLimiter
from rag_core.accounts import Principal

STATE_KEY = "rate_limiter"
"""``app.state.<STATE_KEY>`` holds the app's :class:`RateLimiter`; without one nothing is limited."""


def client_address(request: Request, proxy_hops: int) -> str:
    """The caller's address: the peer, or with ``proxy_hops`` trusted proxies the
    entry they appended to ``X-Forwarded-For`` (the ``proxy_hops``-th from the right;
    the leftmost when the header is shorter). IPv6 addresses count per /64 network,
    the block one subscriber usually holds."""
    peer = request.client.host if request.client else ""
    text = peer
    if proxy_hops > 0:
        forwarded = [
            entry.strip()
            for header in request.headers.getlist("x-forwarded-for")
            for entry in header.split(",")
            if entry.strip()
        ]
        if forwarded:
            text = forwarded[-min(proxy_hops, len(forwarded))]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return peer or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def install(app: FastAPI, limiter: RateLimiter) -> None:
    """Make ``limiter`` the one the app's rate limit dependencies count with."""
    setattr(app.state, STATE_KEY, limiter)


def enforce(request: Request, policy: str, key: str) -> None:
    """Count a request against ``policy`` for ``key``; 429 with Retry-After when over."""
    limiter: RateLimiter | None = getattr(request.app.state, STATE_KEY, None)
    if limiter is None:
        return
    wait = limiter.hit(policy, key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many requests: try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )


def _address_key(request: Request) -> str:
    limiter: RateLimiter | None = getattr(request.app.state, STATE_KEY, None)
    hops = limiter.config.proxy_hops if limiter is not None else 0
    return "address:" + client_address(request, hops)


@functools.cache
def limit(policy: str) -> Callable[..., Awaitable[None]]:
    """A dependency counting against ``policy`` per signed-in user, else per address:
    ``@router.post("/chat", dependencies=[Depends(limit("chat"))])``. The same
    callable for the same policy, so FastAPI counts a request once even when a router
    and its route both declare it.

    It resolves the caller with ``current_principal_optional`` (FastAPI runs it once
    per request even when the route asks for it too), so a bearer token that is
    present but invalid is a 401 here as on ``POST /chat``.
    """
    # Imported here: routes/auth.py may import this module for the sign-in limits.
    from entrypoints.http.routes.auth import current_principal_optional

    async def rate_limit(
        request: Request,
        principal: Annotated[Principal | None, Depends(current_principal_optional)],
    ) -> None:
        key = f"user:{principal.user_id}" if principal else _address_key(request)
        enforce(request, policy, key)

    return rate_limit


@functools.cache
def limit_by_address(policy: str) -> Callable[..., Awaitable[None]]:
    """A dependency counting against ``policy`` per client address only."""

    async def rate_limit(request: Request) -> None:
        enforce(request, policy, _address_key(request))

    return rate_limit


async def limit_sign_in(request: Request) -> None:
    """The sign-in limits: ``sign-in`` per client address, then ``sign-in-email`` per
    account email (stripped and casefolded, kept only as a digest, never logged), so
    neither one address nor many addresses can guess one account's password quickly."""
    enforce(request, "sign-in", _address_key(request))
    email = await _email(request)
    if email:
        # surrogatepass: a lone surrogate in the body must be counted, not crash.
        raw = email.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        enforce(request, "sign-in-email", "email:" + digest)


async def _email(request: Request) -> str:
    # FastAPI has already read (and cached) the body to validate it.
    try:
        body = await request.json()
    except ValueError:
        return ""
    email = body.get("email") if isinstance(body, dict) else None
    return email.strip().casefold() if isinstance(email, str) else ""
