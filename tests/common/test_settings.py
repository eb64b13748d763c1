"""Settings: lax conversion from the environment, *_FILE secrets, clear errors, masked secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from liq_common.settings import CommonSettings, PositiveInt, Secret, SettingsError, describe, load_settings


class DemoSettings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    batch_size: PositiveInt = 100
    debug: bool = False
    token: Secret = Secret("")


def test_values_are_converted_from_strings() -> None:
    """Environment strings become typed fields; unrelated variables are ignored."""
    s = load_settings(DemoSettings, {"BATCH_SIZE": "250", "DEBUG": "true", "PATH": "/bin", "METRICS_PORT": "0"})
    assert (s.batch_size, s.debug, s.metrics_port) == (250, True, 0)


def test_defaults_apply_when_unset() -> None:
    """An empty environment gives the documented defaults."""
    s = load_settings(DemoSettings, {})
    assert s.events_stream == "liq:events"
    assert s.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(("env", "var"), [({"BATCH_SIZE": "0"}, "BATCH_SIZE"), ({"METRICS_PORT": "x"}, "METRICS_PORT")])
def test_bad_value_names_the_variable(env: dict[str, str], var: str) -> None:
    """A bad value raises SettingsError naming the environment variable."""
    with pytest.raises(SettingsError, match=var):
        load_settings(DemoSettings, env)


def test_file_variant_reads_the_secret_and_masks_it(tmp_path: Path) -> None:
    """TOKEN_FILE is read (stripped); repr, str and describe never show the value."""
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cr3t-value\n")
    s = load_settings(DemoSettings, {"TOKEN_FILE": str(secret_file)})
    assert s.token.get() == "s3cr3t-value"
    assert "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(describe(s))


def test_unreadable_file_variant_is_an_error(tmp_path: Path) -> None:
    """A *_FILE pointing nowhere is reported with the variable name."""
    with pytest.raises(SettingsError, match="TOKEN_FILE"):
        load_settings(DemoSettings, {"TOKEN_FILE": str(tmp_path / "missing")})


def test_service_exits_2_naming_a_bad_variable() -> None:
    """A service started with a bad value exits non-zero and says which variable."""
    proc = subprocess.run(
        [sys.executable, "-m", "liq_detector"],
        env={"METRICS_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "METRICS_PORT" in proc.stderr
