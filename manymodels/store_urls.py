"""What an artifact store's location, or a data path, must look like before it is opened: a
local path, or a URL whose scheme is followed by ``://`` and something to name. Kept out of
``artifacts`` and ``tables`` (its own job, and no import of fsspec to answer it): both read a
``file`` URL and a scheme's case the same way, here."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote

from manymodels.exceptions import ArtifactError, DataError, ManyModelsError

# a URL's scheme (RFC 3986: a letter, then letters, digits, "+", "-", "."), two characters at
# least: one is a Windows drive ("C:/models")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(.*)", re.DOTALL)
# object stores whose URL's first part is a bucket (or container): never empty
_BUCKETS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}

logger = logging.getLogger(__name__)


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
    if not rest.strip("/") and (scheme != "file" or rest == "//"):
        raise ArtifactError(
            f"artifact store URL '{text}' names no bucket or path ({scheme}://bucket/prefix)"
        )
    if scheme.lower() in _BUCKETS and rest.startswith("///"):
        # s3://$BUCKET/models with BUCKET unset: s3fs strips the slashes and writes to the
        # bucket "models", someone else's or none, as if it had been named
        raise ArtifactError(
            f"artifact store URL '{text}' names no bucket: '{scheme}://' is followed by a "
            f"bucket ({scheme}://bucket/prefix); is a variable in it empty?"
        )


def store_url(text: str) -> str:
    """``text`` as the URL (or local path) ``open_store`` opens, or an ``ArtifactError`` in
    one line: its scheme in lower case (RFC 3986: ``S3://b/p`` is ``s3://b/p``; it was refused
    as "unknown scheme 'S3://'", ``FILE:///srv`` made the relative directory ``FILE:``), a
    ``file`` URL's host read as RFC 8089 says (``localhost`` is this machine:
    ``file://localhost/tmp/x`` made the relative directory ``./localhost/tmp/x``; another host
    is refused, not written under ``./otherhost``), its %-escapes decoded (``_decoded_store``),
    and a mistyped URL refused, as is empty text (``--artifacts ""``: the current directory,
    whose files the store's folders were written among)."""
    if not text:
        raise ArtifactError(
            "artifact store is an empty path (''): name a directory or a URL (s3://bucket/prefix), "
            "or leave --artifacts out for the registry's artifacts/"
        )
    text = _local_host(local_file_url(_lower_scheme(text)))
    refuse_mistyped_url(text)
    return _decoded_store(text) if text.startswith("file://") else text


def _decoded_store(url: str) -> str:
    """A ``file`` URL with its %-escapes decoded, as ``data_path`` decodes one
    (``file:///tmp/my%20store`` is ``/tmp/my store``: it made the directory ``my%20store``).
    A store that already is at the undecoded path, where none is at the decoded one, is kept,
    with a ``warning:`` line: decoding must not take a registry's models from it. Looked at
    (two ``stat``) only for a URL holding an escape, once per store opened."""
    literal = url.removeprefix("file://")
    path = unquote(literal)
    if path == literal:
        return url
    if "\x00" in path:
        raise ArtifactError(f"artifact store URL '{url}' names a path holding a NUL byte (%00)")
    if Path(literal).exists() and not Path(path).exists():
        logger.warning(
            "warning: artifact store URL '%s': the store already at %s is used, not the "
            "decoded path %s (file URLs are %%-decoded: move the store there, or give %s "
            "as a plain path)",
            url, literal, path, literal,
        )  # fmt: skip
        return url
    return "file://" + path


def data_path(source: str | Path, what: str = "data path") -> str | Path:
    """A data path (a table, a Parquet directory, a ``--future`` table, a shuffle directory)
    as the readers open it: a ``file`` URL as its local path (``file:///srv/x.csv``,
    ``file://localhost/srv/x.csv``, ``FILE:///srv/x.csv`` and ``file:/srv/x.csv`` are
    ``/srv/x.csv``: each was read as the relative path ``file:/srv/x.csv``, "data file not
    found"; its %-escapes decoded: ``file:///srv/my%20data`` is ``/srv/my data``), another
    URL with its scheme in lower case (``S3://b/x`` is ``s3://b/x``), any other path as given.
    A ``file`` URL naming another host, or holding a query or fragment, and the filesystem
    root in either form, are a ``DataError`` in one line naming them (``what``: "data path",
    or ``out_path``'s "output path", whose advice differs). Text only: no filesystem call, so
    it costs nothing per request."""
    text = str(source)
    if not _SCHEME.fullmatch(text):  # a plain path ('sales.csv', '/srv/x', 'C:/x'): as given
        _refuse_root(text, source, what)
        return source
    text = _local_host(local_file_url(_lower_scheme(text)), what, DataError, _ELSEWHERE[what])
    if text.startswith("file://"):
        if not text.removeprefix("file://"):
            raise DataError(f"{what} '{source}' names no path (file:///path)")
        _refuse_query(text.removeprefix("file://"), source, what)
        # RFC 8089 escapes as any URL does: Path.as_uri() writes "my data" as my%20data
        path = unquote(text.removeprefix("file://"))
        if "\x00" in path:  # no file has one; the readers named the decoded path, not found
            raise DataError(f"{what} '{source}' names a path holding a NUL byte (%00)")
        _refuse_root(path, source, what)
        return path
    return text if "://" in text else source  # 'sales:v2.csv' is a file's name


def _refuse_root(path: str, source: object, what: str) -> None:
    """Refuse the filesystem root (``/``, ``file:///``, ``/./..``) as a data path: read as a
    Parquet directory it walked the whole disk, ``/proc`` and all, to fail on a line of
    ``/proc/self/task/…/root/proc/…`` (no one keeps one table at the root)."""
    if _is_root(path):
        raise DataError(f"{what} '{source}' is the filesystem root '/': {_ROOT_ADVICE[what]}")


def _is_root(path: str) -> bool:
    """Whether ``path`` names the root once its ``.`` and ``..`` are read: ``/srv/../`` and
    ``/srv/x/../..`` walked the disk as ``/`` did (only ``/`` followed by dots was refused).
    Read as text, as the kernel reads ``..`` of a path without symlinks; a relative path is
    read against the working directory only when it holds a ``.`` or ``..`` part (``dir/..``,
    or ``.`` itself, run in ``/``: ``.`` walked the disk too), so a usual path costs no
    call."""
    if path.startswith("/"):
        return posixpath.normpath(path) in ("/", "//")  # POSIX keeps a leading "//"
    dotted = not {".", ".."}.isdisjoint(path.split("/"))
    return dotted and os.path.abspath(path) == "/"


def _refuse_query(path: str, source: object, what: str) -> None:
    """Refuse a ``file`` URL's ``?query`` or ``#fragment``: no file reader has a use for one,
    and they were kept in the path ("…/x.csv?v=2: data file not found", a file no one
    named). A ``?`` or ``#`` in a file's name is escaped (``%3F``, ``%23``), as
    ``Path.as_uri()`` writes it."""
    before, hashed, fragment = path.partition("#")
    asked, query = before.partition("?")[1:]
    if asked or hashed:
        part_is, part, mark, escape = (
            ("query", query, "?", "%3F") if asked else ("fragment", fragment, "#", "%23")
        )
        raise DataError(
            f"{what} '{source}' holds the {part_is} '{mark}{part}': a file URL names a path "
            f"only; drop it, or write a '{mark}' in a file's name as {escape}"
        )


def out_path(target: str | Path) -> Path:
    """An output table's path (``score``'s and ``forecast``'s ``--out``) read as a data path
    is: ``file:///srv/x.csv`` is ``/srv/x.csv`` (as a ``Path`` it was the relative
    ``file:/srv/x.csv``, "output directory file:/srv does not exist"); another URL refused in
    one line (``s3://b/x.csv`` said "output directory s3:/b does not exist"). Its one-line
    refusals call it an output path, with an output's advice (they said "data path … give the
    data file", and sent ``file://otherhost/x`` to "only training data is read by URL"); an
    empty one too (``-o ""`` was ".: unknown output format", a path no one typed)."""
    if target == "":  # an unset $OUT: as a Path, "." (".: unknown output format")
        raise DataError("output is an empty path (''): name the .csv or .parquet file to write")
    where = data_path(target, "output path")
    if "://" in str(where):
        raise DataError(
            f"{where}: an output table is written to a path on this machine, not a URL: give "
            "a path (or a file:/// URL), and copy the file from there"
        )
    return Path(where)


def _lower_scheme(text: str) -> str:
    """``text`` with the scheme of a ``scheme://`` URL in lower case (RFC 3986)."""
    found = _SCHEME.fullmatch(text)
    if found is not None and found.group(2).startswith("//"):
        return found.group(1).lower() + ":" + found.group(2)
    return text


STORE_ELSEWHERE = "mount the other machine's directory, or give its URL (sftp://, s3://…)"
# a data table by URL is refused but for training data's Parquet (tables.read_given): the
# store's advice sent `score file://host/x.csv` to `score sftp://host/x.csv`, refused too
DATA_ELSEWHERE = (
    "mount the other machine's directory, or copy the file here (only training data is read "
    "by URL: a Parquet file or directory, sftp://, s3://…)"
)

# what data_path's refusals advise, by what the path is
_ELSEWHERE = {
    "data path": DATA_ELSEWHERE,
    "output path": "write it here and copy it there, or mount the other machine's directory",
}
_ROOT_ADVICE = {
    "data path": "give the data file or the directory that holds it (/srv/sales/ or "
    "file:///srv/sales/)",
    "output path": "give the file to write (/srv/scores.csv or file:///srv/scores.csv)",
}


def _local_host(
    text: str,
    what: str = "artifact store URL",
    error: type[ManyModelsError] = ArtifactError,
    elsewhere: str = STORE_ELSEWHERE,
) -> str:
    """A ``file://host/path`` URL as ``file:///path`` when ``host`` is this machine
    (``localhost``, any case); any other host refused, the message calling ``text`` ``what``
    and saying ``elsewhere`` how to read the other machine's path."""
    if not text.startswith("file://") or text[7:8] in ("/", ""):
        return text
    host, _, path = text[7:].partition("/")
    if host.lower() == "localhost":
        if not path.strip("/"):
            raise error(f"{what} '{text}' names no path (file:///path)")
        return "file:///" + path
    raise error(
        f"{what} '{text}' names the host '{host}': a file URL names a path on "
        f"this machine (file:///{path} or file://localhost/{path}); {elsewhere}"
    )


def local_file_url(text: str) -> str:
    """``file:/srv/models`` (RFC 8089's form with one slash, as Spark and Hadoop print it) as
    ``file:///srv/models``: it was refused as "neither a local path nor a URL", told to write
    ``./file:/srv/models``, a directory named ``file:`` under the current one."""
    if text[:6].lower() == "file:/" and text[6:7] != "/":
        return "file://" + text[5:]
    return text
