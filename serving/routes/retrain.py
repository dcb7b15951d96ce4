"""Retraining through the router, behind the admin token: post rows, then poll the job.

``POST /v1/partitions/{key}/retrain`` takes JSON ``{"rows": [...]}`` or a multipart upload of a
CSV or Parquet file (field ``file``). The rows are checked against the partition's spec and
stored before the answer (202), so what is accepted can run; the retrain itself is a job off the
request path (``serving.jobs``), recorded in the registry database so that every router
sharing it answers for it. ``GET /v1/jobs/{job_id}`` reports it: the new version, both
models' scores on the same validation rows, and the promotion policy's decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from manymodels.exceptions import DataError, first_line, storage_full
from serving import jsonbody
from serving.auth import Admin
from serving.errors import RETRY_AFTER_SECONDS
from serving.job_retries import transient
from serving.job_schemas import JobAccepted, JobList, JobOut, RetrainRequest, UploadedDataOut
from serving.jobs import JobConflict, JobManager, JobQueueFull, new_job_id
from serving.jsonhead import Head, buried
from serving.keys import path_key
from serving.middleware import log_fields
from serving.query import QueryCheckedRoute
from serving.retrain import Retrainer, RetrainMode
from serving.retrain_rows import RetrainTarget
from serving.routes import starting_up
from serving.routes.admin import AUTH_ERRORS
from serving.routes.options import single_options
from serving.schemas import ErrorOut
from serving.uploads import MAX_COLUMNS, json_frame, read_file
from serving.v2_compression import inflated
from serving.v2_schemas import TensorError

router = APIRouter(
    tags=["admin"],
    dependencies=[Admin, Depends(single_options)],
    route_class=QueryCheckedRoute,
)

MAX_FILENAME = 200
MAX_JOB_ID = 64  # ids are 16 hex digits; anything this long is no job (a 422, not a lookup)


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def get_retrainer(request: Request) -> Retrainer:
    retrainer = getattr(request.app.state, "retrainer", None)
    if retrainer is None:
        raise starting_up()
    return retrainer


Jobs = Annotated[JobManager, Depends(get_jobs)]
CurrentRetrainer = Annotated[Retrainer, Depends(get_retrainer)]

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RetrainRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A CSV file (with a header row) or a Parquet file.",
                        }
                    },
                }
            },
        },
    }
}


@router.post(
    "/v1/partitions/{key:path}/retrain",
    status_code=202,
    response_model=JobAccepted,
    responses={
        **AUTH_ERRORS,
        409: {
            "model": ErrorOut,
            "description": "A retrain of this partition is in progress, or a run of its spec "
            "is training.",
        },
        415: {"model": ErrorOut, "description": "Neither JSON nor a multipart upload."},
        422: {
            "model": ErrorOut,
            "description": "Rows that do not fit the partition's spec, or a body that cannot "
            "be read (not JSON, not UTF-8, a malformed upload).",
        },
        429: {"model": ErrorOut, "description": "Too many retrain jobs queued."},
        500: {
            "model": ErrorOut,
            "description": "The uploaded rows could not be stored: the artifact store refused "
            "to write them (permissions, an I/O error; ``UploadNotStored``), the server's "
            "fault; nothing was queued.",
        },
        503: {
            "model": ErrorOut,
            "description": "The registry is unreachable or read-only, or the job could not be "
            "recorded (nothing was queued: post again).",
        },
        507: {
            "model": ErrorOut,
            "description": "The storage (a disk, a quota) is full: the uploaded rows or the job "
            "could not be written; nothing was queued.",
        },
    },
    openapi_extra=_BODY,
    summary="Retrain one partition on new rows (a job)",
)
async def retrain(
    request: Request,
    response: Response,
    key: str,
    retrainer: CurrentRetrainer,
    jobs: Jobs,
    mode: Annotated[
        RetrainMode | None,
        Query(
            description="``append``: train on the partition's newest training rows plus "
            "these, a posted row replacing a kept one with the same time value. ``replace``: "
            "train on these rows alone. Default: ``append`` when the spec has a time column, "
            "``replace`` otherwise (without one, a posted row cannot be told from a repeated "
            "one)."
        ),
    ] = None,
) -> JobAccepted:
    """The posted rows are stored (Parquet, by sha256) and recorded with the run. With a time
    column they are by default *appended* to the partition's newest training rows, so a
    consumer posts only what is new. The new version is evaluated against production on the
    same validation rows; the spec's promotion policy decides, and a promotion is served at
    once. One retrain per partition at a time (409 while one is queued or running)."""
    text = path_key(request, key)
    target = await run_in_threadpool(retrainer.target, text)
    if mode is None:
        mode = "append" if target.spec.time_column else "replace"
    classes = target.spec.target if target.spec.task == "classification" else None
    # the request's own mistakes (media type, encoding, body, rows) are answered before the
    # partition's state (409): a client fixing a malformed request learns of it first
    frame, fmt, filename, said = await _read_table(request, classes, target.key_values)
    plan = await run_in_threadpool(
        retrainer.prepare, target, frame, fmt=fmt, filename=filename, mode=mode,
        warnings=(said,) if said else (),
        before_store=lambda: _refuse_if_busy(jobs, target, retrainer),
    )  # fmt: skip
    job_id = new_job_id()
    try:
        job = await run_in_threadpool(
            jobs.submit,
            target.key,
            lambda: retrainer.run(plan, job_id=job_id),
            backend=retrainer.backend,
            data=plan.data,
            job_id=job_id,
        )
    except JobConflict as e:
        raise HTTPException(409, str(e)) from None
    except JobQueueFull as e:
        raise HTTPException(429, str(e)) from None
    except Exception as e:
        if not transient(e) or storage_full(e):  # a full disk is a 507 (serving.errors)
            raise
        raise HTTPException(
            503,
            f"the retrain job could not be recorded in the registry database ({first_line(e)}); "
            "nothing was queued: post the rows again",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
    log_fields(request.scope, partition=target.key, admin="retrain", job=job.job_id)
    link = f"/v1/jobs/{job.job_id}"
    response.headers["Location"] = link
    return JobAccepted(
        job_id=job.job_id,
        status=job.status,
        partition=job.partition,
        data=UploadedDataOut.of(plan.data),
        links={"self": link},
    )


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobOut,
    responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such job."}},
    summary="One retrain job: status, scores, decision",
)
async def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID)], jobs: Jobs
) -> JobOut:
    return JobOut.of(await run_in_threadpool(jobs.get, job_id))


@router.get("/v1/jobs", response_model=JobList, responses=AUTH_ERRORS, summary="Recent jobs")
async def list_jobs(
    jobs: Jobs, limit: Annotated[int, Query(ge=1, le=1000, description="How many.")] = 50
) -> JobList:
    """Jobs of every router sharing the registry, newest first: every active one and the
    newest finished ones."""
    return JobList(jobs=[JobOut.of(j) for j in await run_in_threadpool(jobs.recent, limit=limit)])


def _refuse_if_busy(jobs: JobManager, target: RetrainTarget, retrainer: Retrainer) -> None:
    """409 once the rows are read and checked, before they are stored; ``submit`` checks
    again, atomically. Also while a run of the partition's spec trains (``manymodels train``,
    a scheduler's firing): the job would train the partition beside it, as a manual train
    beside a firing is refused (``manymodels.run_busy``); its own run checks again."""
    from manymodels.run_busy import busy_message, training_run

    busy = jobs.active(target.key)
    if busy is not None:
        raise HTTPException(409, str(JobConflict(busy)))
    running = training_run(retrainer.service.registry.store, target.spec.name)
    if running is not None:
        raise HTTPException(409, busy_message(running))


async def _read_table(
    request: Request, classes: str | None = None, key: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, str, str | None, str | None]:
    """The posted rows as a DataFrame, the format they came in, the file's name, and what
    reading it made of some cells: a CSV's ``classes`` column (a classifier's target) with its
    labels as written, as train reads them (``NA``, ``None``: labels, not missing values), said
    in the run's warnings as train says it."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = request.headers.get("content-encoding")
    limit = request.app.state.settings.max_body_bytes
    if kind == "application/json" or kind.endswith("+json"):
        request.state.body_model = RetrainRequest  # the members its 422s name (body_errors)
        try:  # gzip / deflate inflated as the other JSON routes inflate them (jsonbody)
            body = inflated(await request.body(), encoding, limit)
        except TensorError as e:
            raise HTTPException(400, str(e)) from None
        if len(body) > jsonbody.HEAD_BYTES:
            _refuse_from_head(jsonbody.scan(body))
        if not body:  # said as the other routes say it (body_errors._no_body): it was pydantic's
            # "Invalid JSON: EOF while parsing a value at line 1 column 0"
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "input": None}])
        try:  # off the event loop (the parser holds the GIL, though: hence the head's check)
            rows = (await run_in_threadpool(RetrainRequest.model_validate_json, body)).rows
        except ValidationError as e:
            errors = [_located(err) for err in e.errors(include_url=False)]
            # the body: one of only whitespace is told so (body_errors.unusable_body), as elsewhere
            raise RequestValidationError(errors, body=body) from None
        return await run_in_threadpool(json_frame, rows), "json", None, None
    if kind == "multipart/form-data":
        if (encoding or "identity").strip().lower() != "identity":
            raise HTTPException(
                415, f"Content-Encoding '{encoding}' is not read on a multipart upload: send "
                "the form uncompressed (or the rows as JSON, which may be gzip or deflate)",
            )  # fmt: skip
        async with request.form(max_files=1, max_fields=10) as form:
            _refuse_other_fields(request, form)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise DataError("send the table as a file in the multipart field 'file'")
            data = await upload.read()
            filename = (upload.filename or "")[:MAX_FILENAME] or None
        frame, fmt, said = await run_in_threadpool(read_file, data, filename, limit, classes, key)
        return frame, fmt, filename, said
    raise HTTPException(
        415,
        'send the rows as JSON {"rows": [...]} (Content-Type: application/json) or as a '
        "CSV / Parquet file in a multipart form field 'file'",
    )


def _refuse_other_fields(request: Request, form: FormData) -> None:
    """A 422 for each form field but ``file``, as for a JSON body's member no route takes
    (``serving.body_errors``): ignored, ``-F mode=replace`` appended the rows it was meant to
    train on alone, and a misspelt field's value went nowhere, without a word."""
    request.state.body_fields = ("file",)  # what the 422 says the form takes
    others = [(name, value) for name, value in form.multi_items() if name != "file"]
    if others:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("body", name), "msg": "", "input": value}
                if isinstance(value, str)
                else {"type": "extra_forbidden", "loc": ("body", name), "msg": ""}
                for name, value in others
            ]
        )


def _refuse_from_head(scanned: Head) -> None:
    """A 422 for an empty row (``{}``), or one of more than ``MAX_COLUMNS`` columns, among the
    first in a big body: a row with no values can never be trained on, and 10 MB of them (3.3
    million) held the event loop ~0.5 s while parsed, then a worker ~1 s, before the 422 they
    earned anyway; a row of 700,000 columns held it 1.4 s. Wherever the rows are in the body
    (``jsonhead``)."""
    if scanned.buried is not None:
        raise DataError(buried(scanned.buried))
    head = scanned.value
    rows = head.get("rows") if isinstance(head, dict) else None
    if not isinstance(rows, list):
        return
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return  # the full parse says what is wrong
        if len(row) > MAX_COLUMNS:  # the last row may be cut short: it has at least these
            raise DataError(
                f"row {i} names at least {len(row):,} columns: more than the "
                f"{MAX_COLUMNS:,} a retrain reads; post only the spec's columns"
            )
        if not row and i < len(rows) - 1:  # the last may be cut short by the head's end
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "rows", i),
                        "msg": "the row holds no values",
                        "type": "value_error",
                    }
                ]
            )


def _located(error: Any) -> dict[str, Any]:
    """A pydantic error of the JSON body, located under ``body`` like FastAPI's own. A body that
    is not JSON comes back as its raw bytes, which are not echoed: they may be megabytes, and
    are not UTF-8 when that is what is wrong with them."""
    out = {k: v for k, v in error.items() if k != "input" or not isinstance(v, bytes | bytearray)}
    out["loc"] = ("body", *error["loc"])
    return out
