"""Tests for manymodels.artifacts: the sha256-addressed store, verified on every read."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from manymodels.artifacts import (
    LocalArtifactStore,
    check_digest,
    deserialize,
    open_store,
    serialize,
)
from manymodels.exceptions import ArtifactCorrupted, ArtifactError, ArtifactNotFound


class _Tripwire:
    """Unpickling this creates a file: proof that bytes were (or were not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def tripwire_bytes(marker: Path) -> bytes:
    return pickle.dumps(_Tripwire(marker))


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def fitted() -> Ridge:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    return Ridge().fit(X, X @ [1.0, 2.0, 3.0])


def test_round_trip(store: LocalArtifactStore) -> None:
    model = fitted()
    data = serialize(model)
    digest, size = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert store.exists(digest)
    assert store.get(digest) == data
    back = deserialize(store.get(digest))
    X = np.eye(3)
    assert np.array_equal(back.predict(X), model.predict(X))
    path = store.path(digest)
    assert path == store.root / digest[:2] / digest[2:4] / digest
    assert list(store.digests()) == [digest]


def test_identical_bytes_are_stored_once(store: LocalArtifactStore) -> None:
    data = serialize(fitted())
    first = store.put(data)
    second = store.put(data)
    assert first == second
    assert list(store.digests()) == [first[0]]
    assert [p for p in store.root.rglob("*") if p.is_file()] == [store.path(first[0])]
    other = store.put(b"other bytes")
    assert sorted(store.digests()) == sorted([first[0], other[0]])


def test_no_temp_files_are_left_behind(store: LocalArtifactStore) -> None:
    for i in range(3):
        store.put(f"artifact {i}".encode())
    files = [p.name for p in store.root.rglob("*") if p.is_file()]
    assert len(files) == 3
    assert not [name for name in files if name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-10],  # truncated
        lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],  # one bit flipped
        lambda data: b"",  # emptied
    ],
    ids=["truncated", "bit-flip", "empty"],
)
def test_damaged_artifact_is_refused(store: LocalArtifactStore, damage) -> None:  # type: ignore[no-untyped-def]
    data = serialize(fitted())
    digest, _ = store.put(data)
    store.path(digest).write_bytes(damage(data))
    with pytest.raises(ArtifactCorrupted, match=f"artifact {digest} .* corrupted"):
        store.get(digest)


def test_tampered_artifact_is_never_unpickled(store: LocalArtifactStore, tmp_path: Path) -> None:
    digest, _ = store.put(serialize(fitted()))
    marker = tmp_path / "unpickled"
    store.path(digest).write_bytes(tripwire_bytes(marker))
    with pytest.raises(ArtifactCorrupted):
        deserialize(store.get(digest))
    assert not marker.exists()
    # the tripwire does work when unpickled: the check above is meaningful
    deserialize(tripwire_bytes(marker))
    assert marker.exists()


def test_missing_artifact(store: LocalArtifactStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(digest)
    with pytest.raises(ArtifactNotFound, match=digest):
        store.get(digest)
    with pytest.raises(LookupError):
        store.get(digest)


@pytest.mark.parametrize(
    "digest",
    [
        "../../etc/passwd",
        "../" + "a" * 61,
        "/" + "a" * 63,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "",
    ],
)
def test_non_hex_digests_are_rejected_before_any_path_is_built(
    store: LocalArtifactStore, digest: str
) -> None:
    for call in (store.path, store.get, store.exists, store.delete):
        with pytest.raises(ArtifactError, match="is not a sha256 hex digest") as info:
            call(digest)
        assert not isinstance(info.value, ArtifactNotFound)
    assert not store.root.exists()


def test_digest_with_trailing_newline_is_rejected(store: LocalArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="is not a sha256 hex digest"):
        check_digest("a" * 64 + "\n")


def test_put_repairs_a_corrupted_artifact_of_the_same_size(store: LocalArtifactStore) -> None:
    data = serialize(fitted())
    digest, _ = store.put(data)
    store.path(digest).write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    assert store.put(data) == (digest, len(data))
    assert store.get(digest) == data


def test_delete(store: LocalArtifactStore) -> None:
    digest, _ = store.put(b"x")
    store.delete(digest)
    assert not store.exists(digest)
    store.delete(digest)  # idempotent


def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalArtifactStore)
    local = open_store(f"file://{tmp_path}")
    assert local.url == str(tmp_path)
    with pytest.raises(ArtifactError, match="only local paths"):
        open_store("s3://bucket/models")


def test_store_is_picklable(store: LocalArtifactStore) -> None:
    digest, _ = store.put(b"shipped to workers")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get(digest) == b"shipped to workers"
