"""The browser console for operations and auditors (issue 16), served under /console."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ipt_workflow.api.console.auth import ConsoleError, SignInRequired
from ipt_workflow.api.console.routes import HERE, page_context, render, router
from ipt_workflow.composition.console import ConsoleConfig

SIGN_IN = "/console/sign-in"


def install(app: FastAPI, config: ConsoleConfig) -> None:
    """Serve the console and its assets from this app."""
    app.state.console = config
    # Before the router: its catch-all would otherwise answer for the assets.
    app.mount(
        "/console/static",
        StaticFiles(directory=str(HERE / "static")),
        name="console-static",
    )
    app.include_router(router)
    app.add_exception_handler(ConsoleError, _console_error)


def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    if isinstance(exc, SignInRequired):
        if request.headers.get("HX-Request") == "true":
            # htmx follows this header on any status: the whole page goes to sign-in.
            return Response(status_code=401, headers={"HX-Redirect": SIGN_IN})
        return RedirectResponse(SIGN_IN, status_code=303)
    context = {"viewer": None} if exc.viewer is None else page_context(exc.viewer, "")
    return render(
        request,
        "error.html",
        {**context, "error": exc},
        status=exc.status,
        headers=exc.headers,
    )
