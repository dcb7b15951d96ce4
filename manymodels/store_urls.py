"""What an artifact store's location must look like before it is opened: a local path, or a URL
whose scheme is followed by ``://`` and something to name. Kept out of ``artifacts`` (its own
job, and no import of fsspec to answer it)."""

from __future__ import annotations

import re

from manymodels.exceptions import ArtifactError

# a URL's scheme (RFC 3986: a letter, then letters, digits, "+", "-", "."), two characters at
# least: one is a Windows drive ("C:/models")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(.*)", re.DOTALL)


def refuse_mistyped_url(text: str) -> None:
    """Refuse an ``--artifacts`` that is a URL typed wrong rather than a local path: ``s3:/b/p``
    (a ``/`` missing) was taken for the relative directory ``./s3:/b/p``, so ``train`` put
    every model there, on the disk of whichever machine ran each task, and said nothing;
    ``s3://`` (no bucket) was refused as the garbled "unknown scheme 's3:://'"."""
    found = _SCHEME.fullmatch(text)
    if found is None:
        return
    scheme, rest = found.groups()
    if not rest.startswith("//"):
        raise ArtifactError(
            f"artifact store URL '{text}' is neither a local path nor a URL: a URL's scheme is "
            f"followed by '://' ({scheme}://bucket/prefix); a local directory with ':' in its "
            f"name is written './{text}'"
        )
    if not rest.strip("/") and scheme != "file":
        raise ArtifactError(
            f"artifact store URL '{text}' names no bucket or path ({scheme}://bucket/prefix)"
        )
