"""The ministry's dashboard: one web page and its static files, open like /docs.

    GET /dashboard                     the page (hub/reporting/static/index.html)
    GET /dashboard/config              {country, default_language, languages, refresh_seconds}
    GET /dashboard/static/<file>       its script, style, translations and vendored Chart.js

The page carries no data: in the browser it logs a person in (POST /auth/login), keeps the
token in sessionStorage and reads /reports/* with it, so the reports' own role checks apply.
Each static file is a route of its own, so nothing outside the folder can ever be asked for.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

STATIC = Path(__file__).parent / "static"
LANGUAGES = ("vi", "id", "en")
# The country pack's language, the page's default; English where a pack has none here.
COUNTRY_LANGUAGE = {"vn": "vi", "id": "id"}
REFRESH_SECONDS = 60
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
}
# Only the hub's own scripts, styles and reports: a token in sessionStorage is worth keeping
# from injected script. Chart.js sizes its canvases through element styles, hence the styles.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)


@router.get("")
async def dashboard() -> FileResponse:
    """Serve the dashboard page."""
    return FileResponse(STATIC / "index.html", media_type=MEDIA_TYPES[".html"], headers=HEADERS)


@router.get("/config")
async def dashboard_config(request: Request) -> JSONResponse:
    """Return the country, and so the page's default language."""
    country = request.app.state.settings.country
    return JSONResponse(
        {
            "country": country,
            "default_language": COUNTRY_LANGUAGE.get(country, "en"),
            "languages": list(LANGUAGES),
            "refresh_seconds": REFRESH_SECONDS,
        }
    )


def _static_route(file: Path) -> None:
    """Serve one static file at /dashboard/static/<its path under the folder>."""
    media_type = MEDIA_TYPES.get(file.suffix, "application/octet-stream")

    async def static_file() -> FileResponse:
        return FileResponse(file, media_type=media_type, headers=HEADERS)

    name = file.relative_to(STATIC).as_posix()
    router.add_api_route(f"/static/{name}", static_file, methods=["GET"], name=f"static {name}")


for _file in sorted(STATIC.rglob("*")):
    if _file.is_file() and _file.name != "index.html":
        _static_route(_file)
