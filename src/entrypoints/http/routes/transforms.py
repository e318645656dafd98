"""Content transforms: `POST /translate`, `/translate/batch`, `/adjust-content` and
`/adjust-content/batch` (field names fixed by the existing frontend).

Limits are part of the schemas: a batch of more than ``MAX_BATCH`` texts, a text of
more than ``MAX_TEXT_CHARS`` characters, or a bad language or level is a 422 whose
detail names the limit (nothing is truncated). No chat model configured is a 503.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from entrypoints.http.rate_limit import limit_by_address
from entrypoints.http.responses import BAD_BODY, MODEL_UNAVAILABLE, TOO_MANY_REQUESTS
from rag_core.accounts import Proficiency
from rag_core.transforms import (
    DEFAULT_LANGUAGE,
    MAX_BATCH,
    MAX_LANGUAGE_CHARS,
    MAX_TEXT_CHARS,
    ContentTransformer,
)


async def get_transforms(request: Request) -> ContentTransformer:
    transforms: ContentTransformer = request.app.state.container.transforms
    return transforms


TransformsDep = Annotated[ContentTransformer, Depends(get_transforms)]

# By address: the frontend sends no token with transforms.
router = APIRouter(
    tags=["transforms"],
    dependencies=[Depends(limit_by_address("transforms"))],
    responses=BAD_BODY | TOO_MANY_REQUESTS | MODEL_UNAVAILABLE,
)

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Texts = Annotated[
    list[Text],
    Field(max_length=MAX_BATCH, description=f"At most {MAX_BATCH} texts; results keep the order."),
]
Language = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LANGUAGE_CHARS,
        pattern=r"^\p{L}[\p{L}\p{M} _-]*$",
        description="A language code or name; technical terms stay in English.",
        examples=["ur", "Urdu"],
    ),
]


def _normalise_level(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


TargetLevel = Annotated[Proficiency, BeforeValidator(_normalise_level)]


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: Text
    target_language: Language = DEFAULT_LANGUAGE


class TranslateResponse(BaseModel):
    translation: str


class TranslateBatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    texts: Texts
    target_language: Language = DEFAULT_LANGUAGE


class TranslateBatchResponse(BaseModel):
    translations: list[str]


class AdjustRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: Text
    target_level: TargetLevel = Field(description="`pro` returns the text unchanged.")


class AdjustResponse(BaseModel):
    content: str


class AdjustBatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    texts: Texts
    target_level: TargetLevel = Field(description="`pro` returns the texts unchanged.")


class AdjustBatchResponse(BaseModel):
    contents: list[str]


@router.post("/translate", response_model=TranslateResponse)
async def translate(body: TranslateRequest, transforms: TransformsDep) -> TranslateResponse:
    """Translate (Urdu by default), keeping technical terms, code, URLs and Markdown."""
    return TranslateResponse(
        translation=await transforms.translate(body.text, body.target_language)
    )


@router.post("/translate/batch", response_model=TranslateBatchResponse)
async def translate_batch(
    body: TranslateBatchRequest, transforms: TransformsDep
) -> TranslateBatchResponse:
    """Translate a batch, in order; identical texts cost one model call."""
    translations = await transforms.translate_batch(body.texts, body.target_language)
    return TranslateBatchResponse(translations=translations)


@router.post("/adjust-content", response_model=AdjustResponse)
async def adjust_content(body: AdjustRequest, transforms: TransformsDep) -> AdjustResponse:
    """Rewrite for a beginner or intermediate reader; `pro` is returned as is."""
    return AdjustResponse(content=await transforms.adjust(body.text, body.target_level))


@router.post("/adjust-content/batch", response_model=AdjustBatchResponse)
async def adjust_content_batch(
    body: AdjustBatchRequest, transforms: TransformsDep
) -> AdjustBatchResponse:
    """Rewrite a batch for the reader's level, in order."""
    contents = await transforms.adjust_batch(body.texts, body.target_level)
    return AdjustBatchResponse(contents=contents)
