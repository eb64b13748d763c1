"""How events travel on Redis streams: one field, ``data``, holding the event as JSON.

JSON keeps the streams language-neutral: ``redis-cli XRANGE liq:events - +`` shows readable events,
and a consumer in any language decodes them with the field names of :mod:`liq_common.events`.
Encoders and decoders are built once per process and reused (msgspec's performance advice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, Protocol, TypeVar

import msgspec

from liq_common.events import Cascade, FeedStatus, Liquidation

FIELD = b"data"
"""The single stream-entry field that carries the JSON payload."""

T = TypeVar("T", bound=msgspec.Struct)
T_co = TypeVar("T_co", bound=msgspec.Struct, covariant=True)

_encoder = msgspec.json.Encoder(decimal_format="string")


def encode(event: msgspec.Struct) -> bytes:
    """Serialise an event to the JSON bytes stored in the ``data`` field."""
    return _encoder.encode(event)


def to_fields(event: msgspec.Struct) -> dict[bytes, bytes]:
    """Stream-entry fields for an event, ready for ``XADD``."""
    return {FIELD: _encoder.encode(event)}


class EntryDecoder(Protocol[T_co]):
    """What a consumer needs to decode its stream's entries (:class:`EventCodec` or a routing decoder)."""

    def decode_flat(self, fields: Sequence[bytes]) -> T_co:
        """Decode one entry given as ``[field, value, ...]``; raises :class:`EntryDecodeError` if invalid."""
        ...


class EntryDecodeError(ValueError):
    """A stream entry is not a valid event: missing ``data`` field, bad JSON or wrong types."""


class EventCodec(Generic[T]):
    """Typed decoder for the entries of one stream.

    Args:
        kind: The Struct type the stream carries, e.g. :class:`Liquidation`.
    """

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(kind)

    def decode_flat(self, fields: Sequence[bytes]) -> T:
        """Decode one entry given as Redis returns it on the wire: ``[field, value, field, value, ...]``.

        Raises:
            EntryDecodeError: As :meth:`decode`.
        """
        if len(fields) == 2 and fields[0] == FIELD:  # the one-field entry every producer writes
            try:
                return self._decoder.decode(fields[1])
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise EntryDecodeError(str(exc)) from exc
        return self.decode(dict(zip(fields[::2], fields[1::2], strict=True)))

    def decode(self, fields: Mapping[bytes, bytes]) -> T:
        """Decode one entry's fields.

        Raises:
            EntryDecodeError: The entry has no ``data`` field or it does not decode to ``kind``; the
                message names the path of the first bad value.
        """
        raw = fields.get(FIELD)
        if raw is None:
            raise EntryDecodeError(f"entry has no {FIELD.decode()!r} field (fields: {sorted(fields)!r})")
        try:
            return self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise EntryDecodeError(str(exc)) from exc


LIQUIDATIONS: EventCodec[Liquidation] = EventCodec(Liquidation)
CASCADES: EventCodec[Cascade] = EventCodec(Cascade)
FEED_STATUS: EventCodec[FeedStatus] = EventCodec(FeedStatus)
