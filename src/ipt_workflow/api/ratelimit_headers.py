"""`X-RateLimit-*` on every answer to a request whose token was counted, errors
included (the limiter decides during authentication; this middleware writes it)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipt_workflow.ops.ratelimit import RATE_DECISIONS, Decision


class RateLimitHeaders:
    """Hands each request a place for its limiter decision, then adds the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decisions: list[Decision] = []
        token = RATE_DECISIONS.set(decisions)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and decisions:
                headers = MutableHeaders(scope=message)
                for name, value in decisions[-1].headers().items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            RATE_DECISIONS.reset(token)
