"""Parsing DESTINATIONS: kinds, filters, secret files, and errors that never show a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liq_alerter.destinations import DestinationError, Redactor, parse_destinations
from liq_alerter.settings import Settings
from liq_common.settings import Secret, describe, load_settings
from tests.alerter.harness import BOT_TOKEN, SECRETS, WEBHOOK_ID, WEBHOOK_TOKEN

HOOK = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


def test_kinds_filters_and_secret_files(tmp_path: Path) -> None:
    """Each kind parses with its tier and asset filter; secrets can come from files."""
    token_file = tmp_path / "bot"
    token_file.write_text(BOT_TOKEN + "\n")
    raw = json.dumps(
        [
            {"kind": "discord", "name": "ops", "webhook_url": HOOK, "assets": ["btc"], "min_tier": "critical"},
            {"kind": "telegram", "name": "desk", "bot_token_file": str(token_file), "chat_id": "-100"},
            {"kind": "console", "name": "console", "min_tier": "low"},
        ]
    )
    ops, desk, console = parse_destinations(Secret(raw))
    assert (ops.kind, ops.min_tier, ops.secret.get()) == ("discord", "critical", f"{WEBHOOK_ID}/{WEBHOOK_TOKEN}")
    assert ops.wants("BTC")
    assert not ops.wants("ETH")
    assert not ops.reaches("high")
    assert ops.reaches("critical")
    assert (desk.kind, desk.min_tier, desk.secret.get(), desk.chat_id) == ("telegram", "high", BOT_TOKEN, "-100")
    assert desk.wants("ANY")
    assert console.kind == "console"


def test_empty_means_console() -> None:
    """No destinations configured: one console sink at tier high."""
    (only,) = parse_destinations(Secret(""))
    assert (only.kind, only.min_tier) == ("console", "high")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"kind": "discord", "name": "a", "webhook_url": "https://example.com/" + WEBHOOK_TOKEN}], "webhook_url"),
        ([{"kind": "telegram", "name": "a", "bot_token": "nocolon" + WEBHOOK_TOKEN, "chat_id": "1"}], "bot_token"),
        ([{"kind": "telegram", "name": "a", "chat_id": "1"}], "exactly one"),
        ([{"kind": "discord", "name": "a", "webhook_url": HOOK, "min_tier": "huge"}], "min_tier"),
        ([{"kind": "discord", "name": "A B", "webhook_url": HOOK}], "name"),
        ([{"kind": "discord", "name": "a", "webhook_url": HOOK, "colour": 1}], "colour"),
        ([{"kind": "console", "name": "a"}, {"kind": "console", "name": "a"}], "duplicate"),
    ],
)
def test_errors_name_the_problem_without_the_secret(items: list[dict[str, object]], message: str) -> None:
    """Bad items are refused with a message naming the field, never echoing a secret."""
    with pytest.raises(DestinationError) as caught:
        parse_destinations(Secret(json.dumps(items)))
    assert message in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)


def test_settings_mask_destinations(tmp_path: Path) -> None:
    """DESTINATIONS_FILE is read, and the start-up description masks it."""
    path = tmp_path / "dest.json"
    path.write_text(json.dumps([{"kind": "discord", "name": "a", "webhook_url": HOOK}]))
    settings = load_settings(Settings, {"DESTINATIONS_FILE": str(path)})
    assert parse_destinations(settings.destinations)[0].name == "a"
    assert WEBHOOK_TOKEN not in repr(describe(settings))


def test_redactor_masks_whole_secrets_and_parts() -> None:
    """Full secrets and their long parts are masked."""
    dests = parse_destinations(
        Secret(
            json.dumps(
                [
                    {"kind": "discord", "name": "a", "webhook_url": HOOK},
                    {"kind": "telegram", "name": "b", "bot_token": BOT_TOKEN, "chat_id": "1"},
                ]
            )
        )
    )
    redact = Redactor(dests)
    text = redact(f"POST /webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN} and /bot{BOT_TOKEN}/x and {BOT_TOKEN.split(':')[1]}")
    assert not any(secret in text for secret in SECRETS)
