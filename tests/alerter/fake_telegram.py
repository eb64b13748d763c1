"""A strict fake of the Telegram Bot API: ``sendMessage`` and ``editMessageText`` with ``parse_mode=HTML``.

Rules enforced (https://core.telegram.org/bots/api#html-style, reliability.md §8): only the
documented tags; only ``&lt; &gt; &amp; &quot;`` and numeric entities; every ``<``, ``>`` and ``&``
outside a tag or entity is an error (400 "Bad Request: can't parse entities: ..."); tags balanced;
text 1-4096 UTF-16 units after entity parsing; "message is not modified" for an identical edit;
"message to edit not found"; "chat not found"; 401 for a wrong token. Knobs: a 429 storm
(``parameters.retry_after`` whole seconds and ``Retry-After``), an outage (5xx), a hold.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.alerter.http_fake import FakeHttpServer, Hold, Reply, Request

TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(r"<(/?)([a-z-]+)((?:\s+[a-z-]+(?:=\"[^\"]*\")?)*)\s*>")
_ENTITY = re.compile(r"&(?:([a-z]+)|#(\d+)|#x([0-9a-fA-F]+));")
_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")


class EntityError(ValueError):
    """The text is not valid Telegram HTML."""


def parse_html(text: str) -> str:
    """The plain text a reader sees; raises EntityError like Telegram does."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        offset = len(text[:i].encode())
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None:
                raise EntityError(f"Unexpected start tag at byte offset {offset}")
            closing, name = m.group(1) == "/", m.group(2)
            if name not in TAGS:
                raise EntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
            if closing:
                if not stack or stack[-1] != name:
                    expected = f'"</{stack[-1]}>"' if stack else "nothing"
                    raise EntityError(
                        f'Unmatched end tag at byte offset {offset}, expected {expected}, found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None or (m.group(1) and m.group(1) not in ENTITIES):
                raise EntityError(f"Unsupported HTML entity at byte offset {offset}")
            if m.group(1):
                out.append(ENTITIES[m.group(1)])
            else:
                out.append(chr(int(m.group(2)) if m.group(2) else int(m.group(3), 16)))
            i = m.end()
        elif ch == ">":
            raise EntityError(f'Unexpected ">" at byte offset {offset}')
        else:
            out.append(ch)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


@dataclass
class Message:
    message_id: int
    chat_id: str
    text: str
    plain: str
    edits: list[str] = field(default_factory=list)

    @property
    def current(self) -> str:
        return self.edits[-1] if self.edits else self.plain


def _error(code: int, description: str, **extra: Any) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description, **extra})


class FakeTelegram:
    """The Bot API under ``/bot<token>/<method>``; ``api_base`` for settings."""

    def __init__(self, token: str, chats: set[str]) -> None:
        self.server = FakeHttpServer(self._handle)
        self.token = token
        self.chats = chats
        self.messages: dict[int, Message] = {}
        self.storm = 0
        self.storm_retry_after = 1
        self.outage_status = 0
        self.hold = Hold()
        self.early: list[Request] = []
        self._blocked_until = 0.0
        self._ids = itertools.count(1)

    async def start(self) -> FakeTelegram:
        await self.server.start()
        return self

    async def close(self) -> None:
        self.hold.release()
        await self.server.close()

    @property
    def api_base(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def ok(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.status == 200 and (method is None or r.path.endswith(f"/{method}"))]

    def _too_many(self, wait: int, now: float) -> Reply:
        self._blocked_until = max(self._blocked_until, now + wait)
        reply = _error(429, f"Too Many Requests: retry after {wait}", parameters={"retry_after": wait})
        reply.headers["Retry-After"] = str(wait)
        return reply

    async def _handle(self, req: Request) -> Reply:
        now = time.monotonic()
        match = _PATH.match(req.path)
        if match is None or match.group(1) != self.token:
            return _error(401, "Unauthorized")
        method = match.group(2)
        if now < self._blocked_until:
            self.early.append(req)
            return self._too_many(max(1, round(self._blocked_until - now + 0.5)), now)
        if self.storm > 0:
            self.storm -= 1
            return self._too_many(self.storm_retry_after, now)
        if self.outage_status:
            return _error(self.outage_status, "Internal Server Error")
        body = req.json() or {}
        if method == "sendMessage":
            reply = self._send(body)
        elif method == "editMessageText":
            reply = self._edit(body)
        else:
            return _error(404, "Not Found")
        if self.hold.active:
            await self.hold.wait()
        return reply

    def _text(self, body: dict[str, Any]) -> str | Reply:
        if str(body.get("chat_id")) not in self.chats:
            return _error(400, "Bad Request: chat not found")
        text = str(body.get("text") or "")
        if body.get("parse_mode") == "HTML":
            try:
                plain = parse_html(text)
            except EntityError as exc:
                return _error(400, f"Bad Request: can't parse entities: {exc}")
        else:
            plain = text
        if not plain.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(plain.encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        return plain

    def _send(self, body: dict[str, Any]) -> Reply:
        plain = self._text(body)
        if isinstance(plain, Reply):
            return plain
        message = Message(next(self._ids), str(body["chat_id"]), str(body["text"]), plain)
        self.messages[message.message_id] = message
        return Reply(200, {"ok": True, "result": {"message_id": message.message_id, "text": plain}})

    def _edit(self, body: dict[str, Any]) -> Reply:
        plain = self._text(body)
        if isinstance(plain, Reply):
            return plain
        message = self.messages.get(int(body.get("message_id") or 0))
        if message is None or message.chat_id != str(body.get("chat_id")):
            return _error(400, "Bad Request: message to edit not found")
        if plain == message.current:
            return _error(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message.edits.append(plain)
        return Reply(200, {"ok": True, "result": {"message_id": message.message_id, "text": plain}})
