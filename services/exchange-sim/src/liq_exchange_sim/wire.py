"""websockets' server connection with the two hooks the simulator needs: control frames and batched writes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event


class ControlAwareConnection(ServerConnection):
    """websockets' server connection, reporting every ping and pong frame the client sends.

    websockets answers pings itself and ignores unsolicited pongs; the simulator needs both to enforce
    Binance's "pong within 10 minutes, unsolicited pongs allowed" rule (exchange-feeds.md §1.8).
    """

    on_ping: Callable[[], None] | None = None
    on_pong: Callable[[], None] | None = None

    def process_event(self, event: Event) -> None:
        """Process a frame as usual, then tell the simulator connection about pings and pongs."""
        super().process_event(event)
        if isinstance(event, Frame):
            if event.opcode is Opcode.PONG and self.on_pong is not None:
                self.on_pong()
            elif event.opcode is Opcode.PING and self.on_ping is not None:
                self.on_ping()

    def send_data(self) -> None:
        """Write pending frames with one ``transport.write`` (one syscall per batch, not per frame)."""
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        eof = not chunks[-1]
        payload = b"".join(chunks)
        if payload:
            self.transport.write(payload)
        if eof:
            # The protocol asks to half-close after a close frame, as websockets itself does.
            if self.transport.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):
                    self.transport.write_eof()
            else:  # pragma: no cover - TLS transports only
                self.transport.close()

    async def send_texts(self, messages: list[bytes]) -> None:
        """Send several text frames at once (UTF-8 bytes), with websockets' flow control.

        Raises:
            ConnectionClosed: The connection is closed.
        """
        async with self.send_context():
            for message in messages:
                self.protocol.send_text(message)
