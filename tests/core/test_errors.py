"""Every error is problem+json: the framework's own answers, validation, limits, crashes."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import PROBLEM_JSON, Conflict, problem_responses
from app.core.middleware import MAX_BODY_BYTES


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=20)]
    count: int


def probe_router() -> APIRouter:
    """Routes that exist only in these tests: two methods on one path, a crash, a conflict."""
    router = APIRouter(prefix="/probe")

    @router.get("/items")
    async def list_items() -> list[Item]:
        return []

    @router.post("/items", responses=problem_responses(409))
    async def create_item(item: Item) -> Item:
        if item.name == "taken":
            raise Conflict("That name is taken.")
        return item

    @router.delete("/items/{item_id}")
    async def delete_item(item_id: int) -> None:
        return None

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    return router


@pytest.fixture
async def probe(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe_router(), prefix="/api/v1")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://eservice.example/problems/{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


async def test_unknown_path_is_problem_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_405_lists_every_method_of_the_path(probe: httpx.AsyncClient) -> None:
    response = await probe.put("/api/v1/probe/items", json={})
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


async def test_405_on_a_path_with_parameters(probe: httpx.AsyncClient) -> None:
    response = await probe.get("/api/v1/probe/items/7")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE"


async def test_405_of_a_framework_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a"}, ["body", "count"]),
        ({"name": "a", "count": "many"}, ["body", "count"]),
        ({"name": "x" * 21, "count": 1}, ["body", "name"]),
        ({"name": "a", "count": 1, "admin": True}, ["body", "admin"]),
    ],
    ids=["missing", "wrong-type", "too-long", "unknown-field"],
)
async def test_validation_error_lists_the_field(
    probe: httpx.AsyncClient, body: dict[str, object], field: list[str]
) -> None:
    response = await probe.post("/api/v1/probe/items", json=body)
    problem = assert_problem(response, 422, "validation_error")
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert [error["loc"] for error in errors] == [field]
    assert all(set(error) == {"loc", "msg", "type"} for error in errors)


async def test_validation_error_does_not_echo_the_input(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/api/v1/probe/items", json={"name": "s3cret-value" * 3})
    assert_problem(response, 422, "validation_error")
    assert "s3cret-value" not in response.text


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"name": "a", "count": 1',
        b"",
        b"[1, 2]",
        b"\xff\xfe",
        b"\x8fw",
        b'{"a": "\xc3"}',
    ],
)
async def test_malformed_json_is_a_validation_problem(probe: httpx.AsyncClient, raw: bytes) -> None:
    response = await probe.post(
        "/api/v1/probe/items", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")


async def test_body_over_64_kib_with_content_length(probe: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'", "count": 1}'
    response = await probe.post(
        "/api/v1/probe/items", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["title"] == "Content Too Large"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_chunked_body_over_64_kib(probe: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'", "count": 1}'

    response = await probe.post(
        "/api/v1/probe/items", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["title"] == "Content Too Large"


async def test_body_just_under_the_limit_is_read(probe: httpx.AsyncClient) -> None:
    padding = " " * (MAX_BODY_BYTES - 100)
    body = ('{"name": "ok", "count": 1' + padding + "}").encode()
    assert len(body) <= MAX_BODY_BYTES
    response = await probe.post(
        "/api/v1/probe/items", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


async def test_app_error_renders_its_code(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/api/v1/probe/items", json={"name": "taken", "count": 1})
    problem = assert_problem(response, 409, "conflict")
    assert problem["detail"] == "That name is taken."


async def test_internal_error_hides_internals_and_logs_request_id(
    probe: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.errors"):
        response = await probe.get("/api/v1/probe/crash")
    problem = assert_problem(response, 500, "internal_error")
    request_id = response.headers["x-request-id"]
    assert request_id in str(problem["detail"])
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    [record] = [r for r in caplog.records if r.name == "app.errors"]
    assert record.__dict__["request_id"] == request_id
    assert record.exc_info is not None


async def test_incoming_request_id_is_kept_when_well_formed(client: httpx.AsyncClient) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "lb-1234.abc"})
    assert kept.headers["x-request-id"] == "lb-1234.abc"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id\twith tab"})
    assert replaced.headers["x-request-id"] != "bad id\twith tab"
    assert len(replaced.headers["x-request-id"]) == 16


async def test_openapi_documents_422_as_problem(probe: httpx.AsyncClient) -> None:
    spec = (await probe.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/probe/items"]["post"]
    response = operation["responses"]["422"]
    assert list(response["content"]) == [PROBLEM_JSON]
    assert response["content"][PROBLEM_JSON]["schema"]["$ref"] == "#/components/schemas/Problem"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "FieldError" in spec["components"]["schemas"]
