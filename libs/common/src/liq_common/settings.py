"""Typed settings from environment variables, loaded once in each service's ``main``.

A service declares one frozen Struct that extends :class:`CommonSettings`; field ``batch_size`` is read
from ``BATCH_SIZE``. For every field, ``NAME_FILE`` may name a file whose content (stripped) is used
instead, the usual way to pass Docker/compose secrets. Values are converted in msgspec's lax mode, so
``"100"`` becomes ``100`` and ``"true"`` becomes ``True``. A bad value raises :class:`SettingsError`
naming the variable; :func:`load_or_exit` turns that into exit status 2.

Secrets are typed :class:`Secret`, whose ``repr`` and ``str`` hide the value, so logging a settings
object never leaks a token.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

S = TypeVar("S", bound="CommonSettings")
T = TypeVar("T")

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs; call :meth:`get` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """Return the secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SettingsError(ValueError):
    """A setting is missing, unreadable or has a bad value; the message names the variable."""


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    """Settings every service has.

    Attributes:
        redis_url: Redis connection URL (``REDIS_URL``).
        events_stream: Stream of normalised liquidations.
        cascades_stream: Stream of cascade states.
        dead_stream: Dead-letter stream: entries no consumer could process, with the reason.
        feed_status_stream: Stream of feed connection lifecycle events.
        stream_maxlen: Approximate cap (``MAXLEN ~``) of every stream. It is the outage we can absorb:
            at 1,000 events/s, 3,600,000 entries is one hour of a stopped consumer (~230 MB in Redis).
            Entries beyond it are trimmed whether or not they were consumed.
        log_level: ``debug``, ``info``, ``warning`` or ``error``.
        log_format: ``auto`` (console on a TTY, else JSON), ``json`` or ``console``.
        metrics_host: Address of the metrics and health HTTP server.
        metrics_port: Port of that server (``/metrics``, ``/health``); 0 picks a free port.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    events_stream: str = "liq:events"
    cascades_stream: str = "liq:cascades"
    dead_stream: str = "liq:dead"
    feed_status_stream: str = "liq:feed"
    stream_maxlen: PositiveInt = 3_600_000
    log_level: str = "info"
    log_format: str = "auto"
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9100


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError(f"cannot convert {type(value).__name__} to {kind!r}")


def _field_names(cls: type[msgspec.Struct]) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(cls)]


def load_settings(cls: type[S], environ: Mapping[str, str]) -> S:
    """Build ``cls`` from ``environ`` (usually ``os.environ``), reading ``*_FILE`` variants.

    Raises:
        SettingsError: A value does not convert, a constraint fails, or a ``*_FILE`` is unreadable.
    """
    values: dict[str, str] = {}
    for name in _field_names(cls):
        file_var = f"{name}_FILE"
        if file_var in environ:
            try:
                values[name] = Path(environ[file_var]).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"{file_var}: cannot read {environ[file_var]!r}: {exc.strerror}") from exc
        elif name in environ:
            values[name] = environ[name]
    try:
        return msgspec.convert(values, cls, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        var = message.rsplit("$.", 1)[-1].split("[", 1)[0] if "$." in message else "?"
        raise SettingsError(f"invalid setting {var}: {message}") from exc


def load_or_exit(cls: type[S], environ: Mapping[str, str]) -> S:
    """Like :func:`load_settings`, but print the error to stderr and exit with status 2."""
    try:
        return load_settings(cls, environ)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from exc


def check_or_exit(check: Callable[[], T], *errors: type[Exception]) -> T:
    """Run a start-up configuration ``check`` (e.g. parse a JSON setting) and return its result.

    One of ``errors`` is a configuration mistake: it is printed to stderr as ``configuration error: ...``
    and the process exits with status 2, as :func:`load_or_exit` does.
    """
    try:
        return check()
    except errors as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from exc


def describe(settings: msgspec.Struct) -> dict[str, Any]:
    """Settings as a dict for the start-up log line; secrets stay masked."""
    return {f.name: repr(v) if isinstance(v, Secret) else v for f, v in _items(settings)}


def _items(settings: msgspec.Struct) -> list[tuple[msgspec.structs.FieldInfo, Any]]:
    return [(f, getattr(settings, f.name)) for f in msgspec.structs.fields(settings)]
