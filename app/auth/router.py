"""Login, token refresh, logout and the signed-in user's own profile."""

from fastapi import APIRouter

router = APIRouter(tags=["auth"])
