"""The query options of the two scoring routes, read without FastAPI's per-parameter machinery.

Declared one by one (``version: Annotated[int | None, Query(...)]`` …), six optional query
parameters and the two app-state dependencies cost a one-row request to a cached model ~60 µs
of FastAPI's work (it inspects each parameter's annotation again on every request) — more than
the rest of the route, the model's arithmetic included, and what kept ``manymodels serve`` at
0.82 of a bare FastAPI app (benchmarks/HISTORY.md, #17's fourth pass). Here a request without a
query string takes the defaults at once; one with a query string is validated as one pydantic model,
and a bad value is the same 422 FastAPI writes (``loc: ["query", name]``). The OpenAPI document
lists the same parameters, generated from the same model (``documented``).

Two differences from declared parameters, both for requests that are wrong anyway: FastAPI
validates the body before the route runs, so a request with a bad body *and* a bad option is
answered with the body's 422 alone (the option's comes once the body is right), and a bad body
sent while the router starts is a 422 rather than the 503 a good one gets.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args, get_origin

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.schemas import MAX_VERSION

ALIAS_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
LEVELS_HELP = (
    "Also answer prediction intervals at these coverages, e.g. `80,95` (`lo-80`/`hi-80`…), "
    "from the version's validation errors; a level it did not record is a 422."
)
Levels = Annotated[str | None, Query(max_length=200, description=LEVELS_HELP)]


class ScoreOptions(BaseModel):
    """``?probabilities=&fallback=&threshold=&levels=`` of a scoring request."""

    model_config = ConfigDict(frozen=True)

    probabilities: bool = Field(
        default=False, description="Also return class probabilities (classification models)."
    )
    fallback: bool = Field(
        default=True,
        description="Let the fallback model answer for a key without a production model. "
        "`false` makes such a key (e.g. a misspelt one) a 404 naming it, and nothing is scored.",
    )
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Label rows of binary classifiers at this probability of the positive "
        "class instead of the version's own threshold (a spec's [decision] rule).",
    )
    levels: str | None = Field(default=None, max_length=200, description=LEVELS_HELP)


class VersionChoice(BaseModel):
    """``?version=`` / ``?alias=``: which version of a partition scores."""

    model_config = ConfigDict(frozen=True)

    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Score this version."
    )
    alias: str | None = Field(
        default=None, pattern=ALIAS_PATTERN, description="Score the version this alias points at."
    )


class PartitionOptions(ScoreOptions, VersionChoice):
    """``VersionChoice`` and ``ScoreOptions``, in that order (pydantic lists a later base's
    fields first): the order the parameters were declared in, and their errors come in."""


Options = TypeVar("Options", bound=ScoreOptions)
_DEFAULTS: dict[type[ScoreOptions], ScoreOptions] = {}


def options_of(request: Request, model: type[Options]) -> Options:
    """The request's options: the defaults when it has no query string, else its query
    parameters validated as ``model`` (a 422 as FastAPI writes it, naming each bad one)."""
    if not request.scope.get("query_string"):
        default = _DEFAULTS.get(model)
        if default is None:
            default = _DEFAULTS[model] = model()
        return default  # type: ignore[return-value]
    try:
        return model.model_validate(_query(request, model))
    except ValidationError as e:
        errors = [{**err, "loc": ("query", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _query(request: Request, model: type[BaseModel]) -> dict[str, str]:
    """The query as one value per name: repeated ``levels`` are joined (``?levels=80&levels=95``
    is ``?levels=80,95``); another of ``model``'s options given twice is a 422, not its last
    value taken silently (``?version=1&version=2`` cannot say which version was meant). Names
    that are not options never get here: the route refused them (``serving.query``)."""
    params = request.query_params
    refuse_repeated(request, *(name for name in model.model_fields if name != "levels"))
    return {name: ",".join(params.getlist(name)) for name in params}


async def single_options(request: Request) -> None:
    """A router's dependency: each query parameter its route declares, other than a list
    (``?outcome=failed&outcome=skipped``), given once — FastAPI takes a repeated one's last
    value (``?sort=drift&sort=age`` sorted by age). Async: no thread hop for a check."""
    if not request.scope.get("query_string"):
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is not None:
        names = [p.alias for p in dependant.query_params if not _many(p.field_info.annotation)]
        refuse_repeated(request, *names)


def _many(annotation: Any) -> bool:
    """Whether a parameter's type takes several values (``list[str] | None``)."""
    if annotation in (list, tuple, set) or get_origin(annotation) in (list, tuple, set):
        return True
    return any(_many(arg) for arg in get_args(annotation))


def refuse_repeated(request: Request, *names: str) -> None:
    """A 422 (as FastAPI writes one) for any of ``names`` given more than once in the query:
    FastAPI's declared parameters would silently take the last value."""
    params = request.query_params
    for name in names:
        values = params.getlist(name)
        if len(values) > 1:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", name),
                        "msg": f"'{name}' is given {len(values)} times: give it once",
                        "type": "repeated",
                    }
                ]
            )


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` listing ``model``'s fields as optional query parameters, as FastAPI
    documents a parameter declared with ``Query``."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": prop}
            | ({"description": description} if description else {})
        )
    return {"parameters": parameters}
