"""The human-readable API page: Swagger UI from the pinned ``swagger-ui-bundle`` package (its
static files are served from this process, no CDN), reading ``/openapi.json``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS_PATH = "/docs/assets"

# Relative URLs, so the page also works behind a proxy that mounts the API under a prefix.
_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>GenHub API</title>
    <link rel="stylesheet" type="text/css" href="docs/assets/swagger-ui.css">
    <link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/assets/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="docs/assets/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script>
      window.onload = function () {
        window.ui = SwaggerUIBundle({
          url: "openapi.json",
          dom_id: "#swagger-ui",
          deepLinking: true,
          presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
          plugins: [SwaggerUIBundle.plugins.DownloadUrl],
          layout: "StandaloneLayout",
        });
      };
    </script>
  </body>
</html>
"""


async def page(request: Request) -> HTMLResponse:
    """The Swagger UI page."""
    return HTMLResponse(_PAGE)


def assets() -> StaticFiles:
    """Swagger UI's JavaScript, CSS and icons."""
    return StaticFiles(directory=Path(str(swagger_ui_path)))
