"""`/api/auth`: the existing frontend's account routes, and the bearer-token
dependencies other routers use (`current_principal_optional` for `POST /chat`,
`current_principal` where signing in is required).

Every route reaches the accounts through ``request.app.state.container.accounts``
only, so a rate limiter for sign-in can sit in front of it (a dependency or a
wrapping service) without touching this module.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from entrypoints.http.account_schemas import (
    AuthResponse,
    ProfileOut,
    ProfileResponse,
    ProfileUpdateRequest,
    SignInRequest,
    SignUpRequest,
    SuccessResponse,
    UserOut,
    VerifyResponse,
)
from entrypoints.http.rate_limit import limit_by_address, limit_sign_in
from entrypoints.http.responses import (
    BAD_BODY,
    BAD_CREDENTIALS,
    EMAIL_TAKEN,
    SIGN_IN_REQUIRED,
    TOO_MANY_REQUESTS,
    UNAVAILABLE,
)
from rag_core.accounts import AccountService, Principal, Profile, User
from rag_core.errors import DependencyUnavailable, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="The accessToken from sign-in or sign-up.")


def _accounts(request: Request) -> AccountService:
    accounts: AccountService = request.app.state.container.accounts
    return accounts


async def _no_store(response: Response) -> None:
    # Bodies carry tokens and personal data: no shared or browser cache may keep them.
    response.headers["Cache-Control"] = "no-store"


# Every route reaches the account store (a token is checked against it), so every
# route can be a 503 while the database is down.
router = APIRouter(
    prefix="/api/auth",
    tags=["accounts"],
    dependencies=[Depends(_no_store)],
    responses=UNAVAILABLE,
)


def _unauthorized(detail: str, *, invalid_token: bool) -> HTTPException:
    challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def presented_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The bearer token, or None when no credential is presented: no Authorization
    header, an empty one, or the Bearer scheme with nothing after it (what the
    textbook's site sends when signed out: ``Bearer ${token || ""}``). Anything else
    that is not ``Bearer <token>`` is "", which then fails verification like any bad
    token: a credential that is present and invalid is never downgraded to anonymous."""
    if credentials is not None:
        return credentials.credentials
    header = request.headers.get("authorization")
    if header is None:
        return None
    # Only SP and HTAB are whitespace in a header (RFC 9110), not NBSP and the like.
    scheme, _, rest = header.strip(" \t").partition(" ")
    if not rest.strip(" \t") and scheme.lower() in ("", "bearer"):
        return None
    return ""


TokenDep = Annotated[str | None, Depends(presented_token)]


async def current_principal_optional(request: Request, token: TokenDep) -> Principal | None:
    """None for an anonymous request; 401 for a token that is present but invalid,
    expired or revoked (never a silent downgrade to anonymous)."""
    if token is None:
        return None
    try:
        return await _accounts(request).authenticate(token)
    except Unauthenticated as exc:
        raise _unauthorized(str(exc), invalid_token=True) from None


async def current_principal(
    principal: Annotated[Principal | None, Depends(current_principal_optional)],
) -> Principal:
    """The signed-in caller; 401 without a valid bearer token."""
    if principal is None:
        raise _unauthorized("sign in required", invalid_token=False)
    return principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(current_principal_optional)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def _user_out(request: Request, user: User) -> UserOut:
    """The user with their profile; without it (nulls) while the database is down,
    so a reader whose token still works (``AccountService.authenticate``) stays signed in."""
    try:
        profile = await _accounts(request).get_profile(user.id) or Profile(user.id)
    except DependencyUnavailable:
        profile = None
    return UserOut.of(user, profile)


async def _principal_or_none(request: Request, token: str | None) -> Principal | None:
    if token is None:
        return None
    try:
        return await _accounts(request).authenticate(token)
    except Unauthenticated:
        return None


@router.post(
    "/sign-up",
    response_model=AuthResponse,
    dependencies=[Depends(limit_by_address("sign-in"))],
    responses=BAD_BODY | EMAIL_TAKEN | TOO_MANY_REQUESTS,
)
async def sign_up(body: SignUpRequest, request: Request) -> AuthResponse:
    """Create an account and sign it in. 409 if the email is taken (case-insensitively)."""
    signed = await _accounts(request).sign_up(
        body.email, body.name, body.password, body.proficiency
    )
    user = UserOut.of(signed.user, Profile(signed.user.id))
    return AuthResponse.of(user, signed.token.value, signed.token.expires_at)


@router.post(
    "/sign-in/email",
    response_model=AuthResponse,
    dependencies=[Depends(limit_sign_in)],
    responses=BAD_BODY | BAD_CREDENTIALS | TOO_MANY_REQUESTS,
)
async def sign_in(body: SignInRequest, request: Request) -> AuthResponse:
    """401 with one message whether the email is unknown or the password wrong."""
    try:
        signed = await _accounts(request).sign_in(body.email, body.password)
    except Unauthenticated as exc:
        raise _unauthorized(str(exc), invalid_token=False) from None
    user = await _user_out(request, signed.user)
    return AuthResponse.of(user, signed.token.value, signed.token.expires_at)


@router.post("/sign-out", response_model=SuccessResponse)
async def sign_out(request: Request, token: TokenDep) -> SuccessResponse:
    """The token stops working. Idempotent: without a valid token there is nothing to do."""
    principal = await _principal_or_none(request, token)
    if principal is not None:
        await _accounts(request).sign_out(principal)
    return SuccessResponse()


@router.get("/get-session", response_model=AuthResponse)
async def get_session(request: Request, token: TokenDep) -> AuthResponse:
    """The signed-in user and their session, or nulls (no token, or one that no longer
    works). A token past half its life comes back renewed: ``session`` then holds a
    fresh ``accessToken`` (and its ``expiresAt``) for the client to keep; the old one
    works until it expires. Not renewed a week after the sign-in it descends from."""
    principal = await _principal_or_none(request, token)
    if principal is None or token is None:
        return AuthResponse(user=None, session=None)
    user = await _user_out(request, principal.user)
    renewed = _accounts(request).renew(principal)
    if renewed is not None:
        return AuthResponse.of(user, renewed.value, renewed.expires_at)
    return AuthResponse.of(user, token, principal.expires_at)


@router.get("/verify", response_model=VerifyResponse)
async def verify(request: Request, token: TokenDep) -> VerifyResponse:
    principal = await _principal_or_none(request, token)
    if principal is None:
        return VerifyResponse(valid=False, user=None)
    return VerifyResponse(valid=True, user=await _user_out(request, principal.user))


@router.get("/profile", response_model=ProfileResponse, responses=SIGN_IN_REQUIRED)
async def profile(request: Request, principal: PrincipalDep) -> ProfileResponse:
    """The reader's profile, or null if they never saved one."""
    found = await _accounts(request).get_profile(principal.user_id)
    if found is None:
        return ProfileResponse(profile=None)
    return ProfileResponse(profile=ProfileOut.of(found, principal.user.proficiency))


@router.post(
    "/profile/update", response_model=SuccessResponse, responses=BAD_BODY | SIGN_IN_REQUIRED
)
async def update_profile(
    body: ProfileUpdateRequest, request: Request, principal: PrincipalDep
) -> SuccessResponse:
    """Change the fields given; the others keep their value."""
    await _accounts(request).update_profile(
        principal.user_id,
        technical_background=body.technical_background,
        hardware_access=body.hardware_access,
        learning_goals=body.learning_goals,
        preferred_language=body.preferred_language,
        proficiency=body.proficiency,
    )
    return SuccessResponse()
