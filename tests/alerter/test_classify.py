"""How platform answers are classified, and that the fakes are as strict as the real rules."""

from __future__ import annotations

import httpx
import pytest

from liq_alerter.delivery import Result, bucket_wait, retry_after
from liq_alerter.discord import DiscordSink
from liq_alerter.telegram import TelegramSink
from tests.alerter.fake_discord import embed_errors
from tests.alerter.fake_telegram import EntityError, parse_html


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _discord(response: httpx.Response) -> Result:
    sink = DiscordSink("1/tok", "http://127.0.0.1:9", 1.0, lambda text: text)
    return sink._classify(response)


def _telegram(response: httpx.Response) -> Result:
    sink = TelegramSink("1:tok", "1", "http://127.0.0.1:9", 1.0, lambda text: text)
    return sink._classify(response)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, {"id": "42"}, "ok"),
        (429, {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}, "rate_limited"),
        (404, {"message": "Unknown Webhook", "code": 10015}, "gone"),
        (404, {"message": "Unknown Message", "code": 10008}, "message_gone"),
        (401, {"message": "Invalid Webhook Token", "code": 50027}, "gone"),
        (400, {"message": "Invalid Form Body", "code": 50035}, "rejected"),
        (502, {"message": "Bad Gateway"}, "retry"),
    ],
)
def test_discord_answers(status: int, body: dict[str, object], kind: str) -> None:
    """Each Discord answer maps to the documented outcome."""
    result = _discord(_response(status, body))
    assert result.kind == kind
    if kind == "ok":
        assert result.message_id == "42"
    if kind == "rate_limited":
        assert result.wait == 1.5


@pytest.mark.parametrize(
    ("status", "description", "kind"),
    [
        (429, "Too Many Requests: retry after 7", "rate_limited"),
        (400, "Bad Request: message is not modified: specified new message content ...", "ok"),
        (400, "Bad Request: message to edit not found", "message_gone"),
        (400, "Bad Request: chat not found", "gone"),
        (400, "Bad Request: can't parse entities: Unsupported start tag", "rejected"),
        (401, "Unauthorized", "gone"),
        (403, "Forbidden: bot was kicked from the supergroup chat", "gone"),
        (500, "Internal Server Error", "retry"),
    ],
)
def test_telegram_answers(status: int, description: str, kind: str) -> None:
    """Each Telegram answer maps to the documented outcome; 429 reads parameters.retry_after."""
    body = {"ok": False, "error_code": status, "description": description, "parameters": {"retry_after": 7}}
    result = _telegram(_response(status, body))
    assert result.kind == kind
    if kind == "rate_limited":
        assert result.wait == 7


def test_retry_after_takes_the_larger_and_distrusts_milliseconds() -> None:
    """The larger of body and header wins; a body a hundred times the header is read as milliseconds."""
    assert retry_after(_response(429, {}, {"Retry-After": "3"}), 1.2) == 3
    assert retry_after(_response(429, {}, {"Retry-After": "1"}), 1.7) == 1.7
    assert retry_after(_response(429, {}, {"Retry-After": "2"}), 2000) == 2
    assert retry_after(_response(429, {}), None) == 1.0


def test_bucket_wait_only_when_empty() -> None:
    """X-RateLimit-Reset-After applies only when X-RateLimit-Remaining is 0."""
    assert bucket_wait(_response(200, {}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.8"})) == 0.8
    assert bucket_wait(_response(200, {}, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset-After": "0.8"})) == 0


@pytest.mark.parametrize(
    "text",
    ["<b>open", "a < b", "x > y", "AT&T", "&nbsp;", "<script>x</script>", "<b><i>x</b></i>", "</b>"],
)
def test_fake_telegram_rejects_what_telegram_rejects(text: str) -> None:
    """The fake's HTML parser refuses unknown tags, bare specials, unknown entities and unbalanced tags."""
    with pytest.raises(EntityError):
        parse_html(text)


def test_fake_telegram_parses_valid_html() -> None:
    """Supported tags and entities parse to the text a reader sees."""
    assert parse_html("<b>A&amp;B</b> &lt;x&gt; &#36;1 <code>q&quot;</code>") == 'A&B <x> $1 q"'


def test_fake_discord_enforces_embed_limits() -> None:
    """Over-long fields, too many fields and a total over 6000 are refused."""
    field = {"name": "n", "value": "v" * 1025}
    assert embed_errors({"embeds": [{"fields": [field]}]})
    assert embed_errors({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]})
    assert embed_errors({"embeds": [{"description": "d" * 4000, "fields": [{"name": "n", "value": "v" * 1000}] * 3}]})
    assert embed_errors({"embeds": [{"title": "t" * 257}]})
    assert embed_errors({"embeds": [{"title": "ok", "fields": [{"name": "n", "value": "v"}]}]}) == []
