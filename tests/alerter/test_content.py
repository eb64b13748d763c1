"""Alert content: money formatting, lower-bound wording, platform limits, escaping of hostile input."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from liq_alerter import discord, telegram
from liq_alerter.console import line
from liq_alerter.content import duration, facts, join_limited, usd
from tests.alerter.fake_discord import embed_errors, render_markdown
from tests.alerter.fake_telegram import parse_html
from tests.alerter.harness import cascade

HOSTILE = [
    "<b>PEPE</b>USDT",
    "A&amp;B_PERP",
    "*BOLD*_x_~~",
    "`code`|spoiler|",
    "[x](http://e.com)",
    "<@123>",
    "a<b",
    "x>y",
    "&lt;",
    "#h1",
    "-list",
    "\\back\\",
    "@everyone",
    ":smile:",
    "q\"uote's",
]


def test_usd_has_thousands_separators_and_two_decimals() -> None:
    """USD always shows thousands separators and exactly two decimals, rounding half up."""
    assert usd(Decimal("1234567.8")) == "$1,234,567.80"
    assert usd(Decimal("0.005")) == "$0.01"
    assert usd(Decimal("12")) == "$12.00"
    assert usd(Decimal("999.994")) == "$999.99"


def test_durations() -> None:
    """Durations read as seconds, minutes and seconds, or hours and minutes."""
    assert [duration(45_000), duration(125_000), duration(3_720_000)] == ["45s", "2m 05s", "1h 02m"]


def test_lower_bound_totals_read_at_least() -> None:
    """A throttled feed's totals are worded as lower bounds, and the reason is given."""
    shown = facts(cascade(0, "high", usd="2500000.5", count=1234, lower_bound=True))
    assert shown.total == "at least $2,500,000.50"
    assert shown.count == "at least 1,234"
    assert "at least $1,750,000.35" in shown.longs
    assert "at least $2,500,000.50 liquidated" in shown.summary
    assert "one liquidation per symbol per second" in shown.footer
    exact = facts(cascade(0, "high", usd="2500000.5"))
    assert exact.total == "$2,500,000.50"
    assert "at least" not in exact.summary


def test_summary_is_plain_and_link_free() -> None:
    """The summary line has no URL and no markup."""
    summary = facts(cascade(3, "critical", status="close", symbols=["http://evil.example/x"])).summary
    assert "http" not in summary
    assert "<" not in summary
    assert summary.endswith("cascade over.")


def test_join_limited_marks_what_it_leaves_out() -> None:
    """Too many items are cut with a count of the rest, within the limit."""
    text = join_limited([f"SYM{i}USDT" for i in range(500)], 100)
    assert len(text) <= 100
    assert text.endswith("more)")


def test_hostile_symbols_render_literally_on_discord() -> None:
    """Markdown specials in symbols are escaped: the reader sees exactly the symbol names."""
    body = discord.payload(cascade(0, "high", base="B*T_C", symbols=HOSTILE))
    assert embed_errors(body) == []
    fields = {f["name"]: render_markdown(f["value"]) for f in body["embeds"][0]["fields"]}
    assert fields["Symbols"] == ", ".join(HOSTILE)
    assert "B*T_C" in render_markdown(body["embeds"][0]["title"])
    assert body["allowed_mentions"] == {"parse": []}


def test_hostile_symbols_render_literally_on_telegram() -> None:
    """HTML specials in symbols are escaped: the text parses and shows exactly the symbol names."""
    plain = parse_html(telegram.text(cascade(0, "high", base="<i>X&Y", symbols=HOSTILE)))
    assert f"Symbols: {', '.join(HOSTILE)}" in plain
    assert "<i>X&Y" in plain.splitlines()[0]


def test_tier_colours_differ() -> None:
    """Each tier has its own embed colour."""
    colours = {discord.payload(cascade(0, t))["embeds"][0]["color"] for t in ("low", "medium", "high", "critical")}
    assert len(colours) == 4


def test_console_line_is_one_line() -> None:
    """The console sink prints one line per alert, with hostile newlines removed."""
    text = line("NEW", "1", cascade(0, "high", symbols=["A\nB", "C\rD"]))
    assert "\n" not in text
    assert "[NEW #1]" in text


@settings(max_examples=60, deadline=None)
@given(
    base=st.text(min_size=1, max_size=300),
    symbols=st.lists(st.text(min_size=1, max_size=120), min_size=1, max_size=400),
    exchanges=st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=50),
    cascade_id=st.text(min_size=1, max_size=300),
)
def test_any_input_fits_both_platforms(base: str, symbols: list[str], exchanges: list[str], cascade_id: str) -> None:
    """Whatever the asset, symbols, exchanges and id, Discord accepts the embed and Telegram parses the text."""
    state = cascade(0, "critical", base=base, symbols=symbols, cascade_id=cascade_id, lower_bound=True)
    state = state.__class__(**{**{f: getattr(state, f) for f in state.__struct_fields__}, "exchanges": exchanges})
    assert embed_errors(discord.payload(state)) == []
    text = telegram.text(state)
    plain = parse_html(text)
    assert 0 < len(plain.encode("utf-16-le")) // 2 <= 4096
