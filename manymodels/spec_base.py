"""The base of every spec model: unknown keys and text for numbers are errors, and a model
built directly raises the same one-line ``SpecError`` as a spec read from TOML.

Its own module so that the sections (``spec_sections``, ``spec_answers``) and ``Spec`` share
one set of rules without importing each other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from manymodels.exceptions import SpecError
from manymodels.spec_errors import describe
from manymodels.spec_types import refuse_text_for_numbers


class _Frozen(BaseModel):
    """Unknown keys are errors (a misspelt option must not be silently ignored), and so is
    text where a number or a boolean is meant: pydantic read ``min_rows = "20"`` as 20 and
    ``enabled = "yes"`` as true, while ``lags = ["8"]`` was refused — one spec, two rules.
    Numbers of any Python kind, and tuples for lists, stay welcome (a notebook's spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    _source: ClassVar[str] = ""
    """What a problem found building one directly is said to be in; empty: ``<ClassName>``."""

    def __init__(self, /, **data: Any) -> None:
        """Built directly (``Spec(name=…)``, ``Selection(prior_rows=…)``), a bad value is the
        one-line ``SpecError`` that ``Spec.from_dict`` raises, not pydantic's ``ValidationError``
        over several lines with a link per problem. Both are ``ValueError``s."""
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise SpecError(describe(e, self._source or f"<{type(self).__name__}>")) from None

    # Pydantic calls an ``__init__`` it finds overridden for every validation too
    # (``model_validate``, a section inside a spec), where a ``SpecError`` would be wrapped
    # into a ``ValidationError`` and the ``stored`` context lost: this one only translates the
    # error of a direct call, so validation keeps to pydantic's own path (as ``RootModel``'s).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("*", mode="before")
    @classmethod
    def _no_text_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None:
            refuse_text_for_numbers(cls.model_fields[info.field_name].annotation, value)
        return value
