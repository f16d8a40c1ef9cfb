"""The ceiling: a bare FastAPI app with one endpoint, served exactly like the service.

What one uvicorn worker on one core can answer at most with FastAPI; the service's figures are
reported as a share of it, measured in the same run.
"""

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/")
async def ceiling() -> dict[str, str]:
    return {"status": "ok"}
