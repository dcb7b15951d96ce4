"""The JSON text of batch answers, written in pieces: each answer's head (partition, model,
version, fallback) once per model, the predictions together in one call.

Encoding 100 answers through ``json.dumps`` cost more than scoring them; these pieces give the
same bytes (compact JSON, as ``json.dumps(ensure_ascii=False)`` and the per-key answer write
them; tests/serving/test_batch.py compares them).
"""

from __future__ import annotations

from json.encoder import encode_basestring as _string  # what json.dumps(ensure_ascii=False) uses

from pydantic_core import to_json

# what closes an answer of the plain shape: no probabilities
TAIL = ',"probabilities":null}'


def answer_head(partition: str, served_by: str, version: int, fallback: bool) -> str:
    """An answer's JSON text up to its prediction (without the comma before it), as
    ``json.dumps`` writes those four fields: the part a partition's answers share."""
    return (
        f'{{"partition":{_string(partition)},"served_by":{_string(served_by)},'
        f'"version":{int.__repr__(version)},"fallback":{"true" if fallback else "false"}'
    )


def joined_head(key: str, version: int) -> str:
    """What comes before a prediction of partition ``key``'s own model (no fallback) in a
    batch answer that is not the first: the previous answer's close, then this one's head.
    Kept on the served model (in ``ServedModel.plain``), so a batch over 100 partitions
    reads an attribute of each rather than looking its head up."""
    return f'{TAIL},{answer_head(key, key, version, False)},"prediction":'


def floats_text(values: list[float]) -> str:
    """Finite floats' shortest round-trip JSON texts, comma-separated, as the per-key answer
    (pydantic's serializer) writes them — ``0.00001`` where ``repr`` writes ``1e-05``, the
    same value read back. Written in one call in Rust: ``float.__repr__`` took ~1 µs a float,
    more than the rest of an answer."""
    return to_json(values).decode()[1:-1]


def float_texts(values: list[float]) -> list[str]:
    """Each float's text as ``floats_text`` writes it."""
    return floats_text(values).split(",") if values else []
