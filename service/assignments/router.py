"""HTTP routes for assignments, their submissions and the gradebook: parse, call the
service, return the shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from service.assignments import gradebook, service
from service.assignments.schemas import SubmissionBody
from service.deps import CallerDep, DatabaseDep, ReadSessionDep, SettingsDep
from service.errors import ErrorBody, json_response
from service.jobs.router import INVALID
from store.assignments import AssignmentEdit, AssignmentSpec

router = APIRouter(prefix="/v1/assignments", tags=["assignments"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such assignment (or student) for you."}
}
STAFF: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Students may not do this."}
}
Student = Annotated[
    str | None, Query(max_length=64, description="Staff: this student's (a student: their own).")
]


@router.post(
    "",
    status_code=201,
    responses={**INVALID, **STAFF, 409: {"model": ErrorBody, "description": "The name is taken."}},
    summary="Create an assignment (instructors)",
)
def create(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    spec: AssignmentSpec,
) -> Response:
    with db.write_session() as session:
        row = service.create(session, spec, settings, caller)
        view = service.views.assignment(row, service.spec_of(row), caller)
    headers = {"Location": str(request.url_for("get_assignment", name=row.name))}
    return json_response(view, 201, headers)


@router.get("", summary="Assignments: a student's published ones, every one for staff")
def listing(session: ReadSessionDep, caller: CallerDep) -> Response:
    return json_response({"assignments": service.listing(session, caller)})


@router.get(
    "/{name}",
    responses=NOT_FOUND,
    summary="An assignment, with a student's instance",
    description="A student gets their instance (data, initial parameters, signature, a code "
    "template) and no withheld check's parameters; staff get everything, and a student's "
    "instance with `?student=`.",
)
def get_assignment(
    session: ReadSessionDep, caller: CallerDep, name: str, student: Student = None
) -> Response:
    return json_response(service.view(session, name, caller, student))


@router.patch(
    "/{name}",
    responses={**NOT_FOUND, **STAFF, **INVALID},
    summary="Edit an assignment (its submissions are kept; regrade to apply)",
)
def edit(
    db: DatabaseDep, settings: SettingsDep, caller: CallerDep, name: str, change: AssignmentEdit
) -> Response:
    with db.write_session() as session:
        row = service.edit(session, name, change, settings, caller)
        view = service.views.assignment(row, service.spec_of(row), caller)
    return json_response(view)


@router.post(
    "/{name}/regrade",
    responses={**NOT_FOUND, **STAFF},
    summary="Regrade every student's latest submission (every one with policy best)",
)
def regrade(db: DatabaseDep, settings: SettingsDep, caller: CallerDep, name: str) -> Response:
    with db.write_session() as session:
        return json_response(service.regrade(session, name, settings, caller))


@router.post(
    "/{name}/submissions",
    status_code=201,
    responses={
        **NOT_FOUND,
        **INVALID,
        409: {"model": ErrorBody, "description": "Past due with late: reject (`past_due`)."},
        429: {
            "model": ErrorBody,
            "description": "max_submissions used (`too_many_submissions`) or sooner than "
            "min_interval_seconds (`too_soon`): Retry-After; nothing stored.",
        },
    },
    summary="Submit: gradients (graded at once) or code (graded as a job)",
)
def submit(
    db: DatabaseDep, settings: SettingsDep, caller: CallerDep, name: str, body: SubmissionBody
) -> Response:
    with db.write_session() as session:
        view = service.submit(session, name, body, settings, caller)
    return json_response(view, 201)


@router.get(
    "/{name}/submissions",
    responses=NOT_FOUND,
    summary="Submissions, oldest first: a student's own; staff every one (or `?student=`)",
)
def submissions(db: DatabaseDep, caller: CallerDep, name: str, student: Student = None) -> Response:
    service.settle(db, name)
    with db.read_session() as session:
        return json_response({"submissions": service.submissions(session, name, caller, student)})


@router.get("/{name}/submissions/{submission_id}", responses=NOT_FOUND, summary="One submission")
def submission(db: DatabaseDep, caller: CallerDep, name: str, submission_id: str) -> Response:
    service.settle(db, name)
    with db.read_session() as session:
        return json_response(service.submission(session, name, submission_id, caller))


@router.get(
    "/{name}/grades",
    responses={
        **NOT_FOUND,
        **STAFF,
        200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The grades."},
    },
    summary="The gradebook (staff): per student the submission that counts; CSV with Accept",
)
def grades(
    db: DatabaseDep,
    caller: CallerDep,
    name: str,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv: as Accept: text/csv does.")
    ] = None,
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    service.settle(db, name)
    with db.read_session() as session:
        book = gradebook.grades(session, name, caller)
    if format == "csv" or (format is None and accept is not None and "text/csv" in accept):
        headers = {"Content-Disposition": f'attachment; filename="{name}-grades.csv"'}
        return Response(gradebook.as_csv(book), media_type="text/csv", headers=headers)
    return json_response(book)


@router.get(
    "/{name}/grades/gradescope",
    responses={**NOT_FOUND, **STAFF},
    summary="A student's results in Gradescope's autograder results.json format (staff)",
)
def gradescope(
    db: DatabaseDep,
    caller: CallerDep,
    name: str,
    student: Annotated[str, Query(max_length=64, description="The student.")],
) -> Response:
    service.settle(db, name)
    with db.read_session() as session:
        return json_response(gradebook.gradescope(session, name, caller, student))


@router.get(
    "/{name}/insights",
    responses={**NOT_FOUND, **STAFF},
    summary="How many got each check right, the commonest diagnoses per tensor (staff)",
)
def insights(db: DatabaseDep, caller: CallerDep, name: str) -> Response:
    service.settle(db, name)
    with db.read_session() as session:
        return json_response(gradebook.insights(session, name, caller))
