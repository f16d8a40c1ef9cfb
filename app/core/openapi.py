"""The OpenAPI document tells the truth about errors: they are problem+json, 422 included."""

from typing import Any

from fastapi import FastAPI

from app.core.errors import PROBLEM_JSON, Problem

_REF = "#/components/schemas/{model}"
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template=_REF)
    nested = schema.pop("$defs", {})
    return {"Problem": schema, **nested}


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's default 422 (`HTTPValidationError`, application/json) by Problem.

    The handler in app.core.errors answers request validation errors, malformed JSON
    included, as problem+json with a field list; the document must say so, or generated
    clients and the fuzz gate would expect a body the service never sends.
    """
    problem = {"schema": {"$ref": _REF.format(model="Problem")}}
    changed = False
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is None or "application/json" not in response.get("content", {}):
                continue
            ref = response["content"]["application/json"].get("schema", {}).get("$ref", "")
            if ref.endswith("/HTTPValidationError"):
                response["content"] = {PROBLEM_JSON: problem}
                response["description"] = "The request is not valid"
                changed = True
    if changed:
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _problem_schemas().items():
            schemas.setdefault(name, schema)
        for name in _FRAMEWORK_SCHEMAS:
            schemas.pop(name, None)
    return spec


def install_problem_documentation(app: FastAPI) -> None:
    """Post-process the generated document once per route table (FastAPI caches it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(generate())

    app.openapi = openapi  # type: ignore[method-assign]
