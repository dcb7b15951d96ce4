"""The JSON text of batch answers, written in pieces: each answer's head (partition, model,
version, fallback, target) once per model, the predictions together in one call.

Encoding 100 answers through ``json.dumps`` cost more than scoring them; these pieces give the
same bytes (compact JSON, as ``json.dumps(ensure_ascii=False)`` and the per-key answer write
them; tests/serving/test_batch.py compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring as _string  # what json.dumps(ensure_ascii=False) uses

from pydantic_core import to_json

# what closes an answer of the plain shape: no probabilities
TAIL = ',"probabilities":null}'


def answer_head(
    partition: str, served_by: str, version: int, fallback: bool, target: str | None
) -> str:
    """An answer's JSON text up to its prediction (without the comma before it), as
    ``json.dumps`` writes those five fields: the part a partition's answers share."""
    return (
        f'{{"partition":{_string(partition)},"served_by":{_string(served_by)},'
        f'"version":{int.__repr__(version)},"fallback":{"true" if fallback else "false"},'
        f'"target":{"null" if target is None else _string(target)}'
    )


def joined_head(
    partition: str, served_by: str, version: int, fallback: bool, target: str | None
) -> str:
    """What comes before an answer's prediction in a batch answer when it is not the first:
    the previous answer's close, then this one's head. A partition's own model keeps its
    joined head (in ``ServedModel.plain``), so a batch over 100 partitions reads an
    attribute of each rather than writing its head."""
    return f'{TAIL},{answer_head(partition, served_by, version, fallback, target)},"prediction":'


def floats_text(values: list[float]) -> str:
    """Finite floats' shortest round-trip JSON texts, comma-separated, as the per-key answer
    (pydantic's serializer) writes them — ``0.00001`` where ``repr`` writes ``1e-05``, the
    same value read back. Written in one call in Rust: ``float.__repr__`` took ~1 µs a float,
    more than the rest of an answer."""
    return to_json(values).decode()[1:-1]


def predictions_text(starts: Sequence[str], floats: str) -> str:
    """``{"predictions": [...]}``'s text from each answer's joined head (``joined_head``) and
    the predictions' text (``floats_text``), in the same order."""
    if not starts:
        return _EMPTY
    parts: list[str] = [""] * (2 * len(starts))
    parts[0::2] = starts
    parts[1::2] = floats.split(",")
    return _closed("".join(parts))


def one_model_text(start: str, floats: str) -> str:
    """``predictions_text`` when every answer has the same joined head ``start``: the head
    goes between the predictions in one ``str.replace``, in C."""
    return _closed(start + floats.replace(",", start)) if floats else _EMPTY


_EMPTY = '{"predictions":[]}'
_FIRST = len(TAIL) + 1  # where the first joined head's own answer starts


def _closed(text: str) -> str:
    # the first answer's head has no answer before it to close
    return '{"predictions":[' + text[_FIRST:] + TAIL + "]}"
