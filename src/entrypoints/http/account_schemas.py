"""Bodies of the `/api/auth` routes. Field names are the existing frontend's
(camelCase for the user and session, snake_case for the profile; see
api-contract.md); limits are part of the schema, so a bad body is a 422."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from rag_core.account_input import (
    MAX_EMAIL,
    MAX_NAME,
    MAX_PASSWORD_BYTES,
    MAX_PROFILE_FIELD,
    MIN_PASSWORD,
    normalise_email,
)
from rag_core.accounts import Proficiency, Profile, User
from rag_core.errors import InvalidInput


def _valid_email(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def _within_bcrypt_limit(value: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    return value


Email = Annotated[
    str, Field(max_length=MAX_EMAIL, examples=["ada@example.com"]), AfterValidator(_valid_email)
]


class SignUpRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email
    name: str = Field(min_length=1, max_length=MAX_NAME, examples=["Ada Lovelace"])
    password: Annotated[
        str,
        Field(
            min_length=MIN_PASSWORD,
            max_length=MAX_PASSWORD_BYTES,
            description=f"{MIN_PASSWORD} characters to {MAX_PASSWORD_BYTES} bytes (UTF-8).",
        ),
        AfterValidator(_within_bcrypt_limit),
    ]
    proficiency: Proficiency = Proficiency.BEGINNER

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


class SignInRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email
    password: Annotated[
        str,
        Field(min_length=1, max_length=MAX_PASSWORD_BYTES),
        AfterValidator(_within_bcrypt_limit),
    ]


class ProfileUpdateRequest(BaseModel):
    """Fields left out (or null) keep their stored value."""

    model_config = ConfigDict(extra="ignore")

    technical_background: str | None = Field(None, max_length=MAX_PROFILE_FIELD)
    hardware_access: str | None = Field(None, max_length=MAX_PROFILE_FIELD)
    learning_goals: str | None = Field(None, max_length=MAX_PROFILE_FIELD)
    preferred_language: str | None = Field(None, max_length=MAX_PROFILE_FIELD)
    proficiency: Proficiency | None = None


_FROM_PROFILE = "From the profile (empty when never set); null while the database cannot say."


class UserOut(BaseModel):
    """The account, with its profile: the site's profile page reads
    ``technical_background``, ``hardware_access`` and ``learning_goals`` (and the level,
    ``proficiency``) from this object, not from ``/profile``."""

    id: str
    email: str
    name: str
    proficiency: Proficiency = Field(description="The reader's level.")
    emailVerified: bool
    createdAt: datetime
    updatedAt: datetime
    technical_background: str | None = Field(description=_FROM_PROFILE)
    hardware_access: str | None = Field(description=_FROM_PROFILE)
    learning_goals: str | None = Field(description=_FROM_PROFILE)
    preferred_language: str | None = Field(description=_FROM_PROFILE)

    @classmethod
    def of(cls, user: User, profile: Profile | None) -> UserOut:
        """``profile`` None: unknown right now (the profile fields are null)."""
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            proficiency=user.proficiency,
            emailVerified=user.email_verified,
            createdAt=user.created_at,
            updatedAt=user.updated_at,
            technical_background=profile.technical_background if profile else None,
            hardware_access=profile.hardware_access if profile else None,
            learning_goals=profile.learning_goals if profile else None,
            preferred_language=profile.preferred_language if profile else None,
        )


class SessionOut(BaseModel):
    accessToken: str
    tokenType: Literal["Bearer"] = "Bearer"
    expiresAt: datetime


class AuthResponse(BaseModel):
    user: UserOut | None
    session: SessionOut | None

    @classmethod
    def of(cls, user: UserOut, token: str, expires_at: datetime) -> AuthResponse:
        return cls(user=user, session=SessionOut(accessToken=token, expiresAt=expires_at))


class VerifyResponse(BaseModel):
    valid: bool
    user: UserOut | None


class ProfileOut(BaseModel):
    technical_background: str
    hardware_access: str
    learning_goals: str
    preferred_language: str
    proficiency: Proficiency
    updated_at: datetime | None

    @classmethod
    def of(cls, profile: Profile, proficiency: Proficiency) -> ProfileOut:
        return cls(
            technical_background=profile.technical_background,
            hardware_access=profile.hardware_access,
            learning_goals=profile.learning_goals,
            preferred_language=profile.preferred_language,
            proficiency=proficiency,
            updated_at=profile.updated_at,
        )


class ProfileResponse(BaseModel):
    profile: ProfileOut | None


class SuccessResponse(BaseModel):
    success: bool = True
