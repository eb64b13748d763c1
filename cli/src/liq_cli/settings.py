"""Settings of the ``liq`` command: the services' environment variables, overridable by flags.

``liq`` reads the same variables as the services (``REDIS_URL``, ``DATABASE_URL``, ``EVENTS_STREAM``,
``CASCADES_STREAM``, ``DEAD_STREAM``, ``DASH_PREFIX``...) so that pointing a shell at a deployment is the
same as pointing a service at it; a flag on the command line wins over the variable.
"""

from __future__ import annotations

import msgspec

from liq_common.settings import CommonSettings, Secret


class CliSettings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """Everything the subcommands connect to.

    Attributes:
        database_url: PostgreSQL read connection (``DATABASE_URL``); read-only rights are enough.
        dash_prefix: Key prefix of the detector's dashboard state (``DASH_PREFIX``, as the detector).
    """

    database_url: Secret = msgspec.field(default_factory=lambda: Secret("postgresql://127.0.0.1:5432/liq"))
    dash_prefix: str = "liq:dash:"


def override(settings: CliSettings, **flags: str | None) -> CliSettings:
    """``settings`` with every flag that was given (not None) replacing its variable."""
    given: dict[str, object] = {name: value for name, value in flags.items() if value is not None}
    if "database_url" in given:
        given["database_url"] = Secret(str(given["database_url"]))
    return msgspec.structs.replace(settings, **given) if given else settings
