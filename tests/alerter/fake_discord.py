"""A strict fake of Discord's webhook API: execute (``?wait=true``) and edit webhook messages.

Rules enforced (reliability.md §8): embed limits (title 256, description 4096, 25 fields, field
name 256, value 1024, footer 2048, 6000 in total, at most 10 embeds, content 2000) answered with 400
and Discord's error body; a bucket of ``capacity`` requests per ``window`` seconds with
``X-RateLimit-*`` headers and 429 (``retry_after`` float seconds, ``Retry-After``) when exceeded;
404 ``10015 Unknown Webhook`` for a deleted webhook and ``10008 Unknown Message``; 401 for a wrong token.
Knobs: a 429 storm, an outage (5xx), a hold (hung responses). Every request is recorded; a request
arriving before an announced ``retry_after`` elapsed is recorded in ``early``.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.alerter.http_fake import FakeHttpServer, Hold, Reply, Request

_PATH = re.compile(r"^/api/v10/webhooks/(\d+)/([^/]+)(?:/messages/(\d+))?$")
_MD_SPECIAL = set("*_~|`[]<>#:@()-\\")


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def render_markdown(text: str) -> str:
    """What a reader sees: escapes resolved; unescaped formatting characters are consumed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and not text[i + 1].isalnum() and not text[i + 1].isspace():
            out.append(text[i + 1])
            i += 2
            continue
        if ch not in "*_~|`":
            out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class Message:
    id: str
    webhook: str
    payload: dict[str, Any]
    edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> dict[str, Any]:
        return self.edits[-1] if self.edits else self.payload


def embed_errors(body: dict[str, Any]) -> list[str]:
    """Discord's embed and content rules; an empty list when the body is valid."""
    errors: list[str] = []
    if utf16(str(body.get("content") or "")) > 2000:
        errors.append("content: Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors.append("embeds: Must be 10 or fewer in length.")
    total = 0
    for n, e in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            size = utf16(str(e.get(key) or ""))
            total += size
            if size > limit:
                errors.append(f"embeds.{n}.{key}: Must be {limit} or fewer in length.")
        fields = e.get("fields") or []
        if len(fields) > 25:
            errors.append(f"embeds.{n}.fields: Must be 25 or fewer in length.")
        for k, f in enumerate(fields):
            name, value = str(f.get("name") or ""), str(f.get("value") or "")
            if not name or not value:
                errors.append(f"embeds.{n}.fields.{k}: This field is required")
            if utf16(name) > 256:
                errors.append(f"embeds.{n}.fields.{k}.name: Must be 256 or fewer in length.")
            if utf16(value) > 1024:
                errors.append(f"embeds.{n}.fields.{k}.value: Must be 1024 or fewer in length.")
            total += utf16(name) + utf16(value)
        footer = str((e.get("footer") or {}).get("text") or "")
        if utf16(footer) > 2048:
            errors.append(f"embeds.{n}.footer.text: Must be 2048 or fewer in length.")
        total += utf16(footer)
        colour = e.get("color")
        if colour is not None and not (isinstance(colour, int) and 0 <= colour <= 0xFFFFFF):
            errors.append(f"embeds.{n}.color: invalid")
    if total > 6000:
        errors.append("embeds: Embed size exceeds maximum size of 6000")
    if not embeds and not body.get("content"):
        errors.append("Cannot send an empty message (50006)")
    return errors


class FakeDiscord:
    """Discord's webhook endpoints under ``/api/v10``. Use ``await start()``; ``api_base`` for settings."""

    def __init__(self, capacity: int = 5, window: float = 2.0) -> None:
        self.server = FakeHttpServer(self._handle)
        self.webhooks: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.messages: dict[str, Message] = {}
        self.capacity = capacity
        self.window = window
        self.storm = 0
        self.storm_retry_after = 1.0
        self.storm_global = False
        self.outage_status = 0
        self.hold = Hold()
        self.hold_methods: set[str] = {"POST", "PATCH"}
        self.early: list[Request] = []
        self._blocked_until: dict[str, float] = {}
        self._bucket: dict[str, list[float]] = {}
        self._ids = itertools.count(1_100_000_000_000_000_000)

    async def start(self) -> FakeDiscord:
        await self.server.start()
        return self

    async def close(self) -> None:
        self.hold.release()
        await self.server.close()

    @property
    def api_base(self) -> str:
        return f"{self.server.url}/api/v10"

    def add_webhook(self, webhook_id: str, token: str) -> str:
        """Create a webhook; returns its public URL (as a user would copy it)."""
        self.webhooks[webhook_id] = token
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def ok(self, method: str | None = None) -> list[Request]:
        """Successful requests, optionally of one method."""
        return [r for r in self.requests if r.status in (200, 204) and (method is None or r.method == method)]

    def _limited(self, key: str, now: float) -> Reply | None:
        if now < self._blocked_until.get(key, 0.0):
            # Arrived before the retry_after we announced elapsed: a violation, and 429 again.
            self.early.append(self.requests[-1])
            return self._too_many(key, self._blocked_until[key] - now, now)
        if self.storm > 0:
            self.storm -= 1
            return self._too_many(key, self.storm_retry_after, now, self.storm_global)
        recent = [t for t in self._bucket.get(key, []) if now - t < self.window]
        self._bucket[key] = recent
        if len(recent) >= self.capacity:
            return self._too_many(key, self.window - (now - recent[0]), now)
        recent.append(now)
        return None

    def _too_many(self, key: str, wait: float, now: float, global_: bool = False) -> Reply:
        self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), now + wait)
        headers = {
            "Retry-After": str(max(1, round(wait))),
            "X-RateLimit-Limit": str(self.capacity),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{wait:.3f}",
            "X-RateLimit-Scope": "global" if global_ else "user",
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": global_}
        return Reply(429, body, headers)

    def _bucket_headers(self, key: str, now: float) -> dict[str, str]:
        used = self._bucket.get(key, [])
        remaining = max(0, self.capacity - len(used))
        reset_after = self.window - (now - used[0]) if used else self.window
        return {
            "X-RateLimit-Limit": str(self.capacity),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"b{key}",
        }

    async def _handle(self, req: Request) -> Reply:
        now = time.monotonic()
        match = _PATH.match(req.path)
        if match is None:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        webhook_id, token, message_id = match.groups()
        if webhook_id in self.deleted or webhook_id not in self.webhooks:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if self.webhooks[webhook_id] != token:
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        limited = self._limited(webhook_id, now)
        if limited is not None:
            return limited
        if self.outage_status:
            return Reply(self.outage_status, {"message": "Service Unavailable", "code": 0})
        body = req.json() or {}
        errors = embed_errors(body)
        if errors:
            return Reply(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors})
        result = self._apply(req, webhook_id, message_id, body)
        if req.method in self.hold_methods and self.hold.active:
            await self.hold.wait()  # Discord acted; the answer comes late, or never if the client is gone
        if isinstance(result, Reply):
            return result
        headers = self._bucket_headers(webhook_id, now)
        if req.method == "POST" and req.query.get("wait") != "true":
            return Reply(204, None, headers)
        return Reply(200, {"id": result.id, "webhook_id": webhook_id, **result.current}, headers)

    def _apply(self, req: Request, webhook_id: str, message_id: str | None, body: dict[str, Any]) -> Message | Reply:
        if req.method == "POST" and message_id is None:
            message = Message(str(next(self._ids)), webhook_id, body)
            self.messages[message.id] = message
            return message
        if req.method == "PATCH" and message_id is not None:
            found = self.messages.get(message_id)
            if found is None or found.webhook != webhook_id:
                return Reply(404, {"message": "Unknown Message", "code": 10008})
            found.edits.append(body)
            return found
        return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
