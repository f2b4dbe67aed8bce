"""The citizen web form at ``/``: static files from ``services/intake/web/``, no build step.

Only the files present at start-up are served, looked up by exact name in a table, so no
path a client sends ever reaches the file system. The page runs no inline script and talks
to nothing but this origin, and the kernel's Content-Security-Policy says exactly that.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

WEB_ROOT = Path(__file__).parent / "web"
ASSET_PREFIX = "/citizen"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The security headers, the Content-Security-Policy among them, come from the kernel
# (yijian.http.SecurityHeaders) for every response; only caching is this page's own.
HEADERS = {
    # No fingerprinted file names without a build step: revalidate every time (cheap, ETag).
    "Cache-Control": "no-cache",
}


def _assets(root: Path) -> dict[str, tuple[Path, str]]:
    return {
        path.name: (path, _TYPES[path.suffix])
        for path in sorted(root.iterdir())
        if path.is_file() and path.suffix in _TYPES
    }


def build_web_router(root: Path = WEB_ROOT) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    assets = _assets(root)

    def serve(name: str) -> FileResponse:
        found = assets.get(name)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        path, media_type = found
        return FileResponse(path, media_type=media_type, headers=HEADERS)

    @router.get("/")
    async def citizen_form() -> FileResponse:
        return serve("index.html")

    @router.get(ASSET_PREFIX + "/{name}")
    async def citizen_asset(name: str) -> FileResponse:
        return serve(name)

    return router
