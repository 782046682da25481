"""mijcodec for disnake (>= 2.9): one call, no other change to the bot.

::

    import mijcodec.compat.disnake
    mijcodec.compat.disnake.install()             # before bot.run()/start()
    # or install(compress="zstd-stream"): disnake 2.12 gets zstd-stream, which it lacks

disnake 2.12 (the newest release) inflates zlib-stream inline in
``DiscordWebSocket.received_message`` (``self._zlib``/``self._buffer``).
disnake's main branch has since moved that into per-connection decompression
contexts (``gateway._decompressor_for_params``, ``ws._decompressor``) with
zstd-stream; no release has them yet, so this drop-in hooks the one place
both have: ``received_message`` is handed the text, which skips whichever
decompression the library would have done. ``install(compress=None)`` patches
(``uninstall()`` restores them):

``disnake.gateway.DiscordWebSocket.__init__``
    each websocket made while installed gets its own ``received_message``
    (an instance attribute): a binary message is decoded by a per-connection
    :class:`mijcodec.Decoder` (for the ``compress=`` of the URL it connected
    to), then disnake's own ``received_message`` gets the text, so
    ``on_socket_raw_receive`` still gets a ``str``.
``disnake.utils._from_json``
    handed that very text (an identity check), returns the dict mijcodec's
    path already parsed with orjson; anything else goes to disnake's original.
``disnake.http.HTTPClient._format_gateway_url``
    only with ``install(compress="zstd-stream")``: the URL it builds asks for
    ``compress=zstd-stream`` instead of ``zlib-stream`` (``get_gateway``,
    ``get_bot_gateway`` and ``from_client`` all go through it).

A codec error (corrupt frame, payload over the size cap, not JSON) closes the
connection with 4000 and raises disnake's ``ReconnectWebSocket``, so the
client RESUMEs and the server replays what was lost (a payload that is not
JSON is first dispatched to ``on_socket_raw_receive``, as stock does). Fixed
with ``install()`` in effect, each reproduced against stock disnake 2.12 in
the tests: a corrupt frame (stock: ``zlib.error`` escapes ``Client.connect``),
a ``00 00 ff ff`` suffix split across messages (stock: JSON "Extra data"),
zstd-stream including Spacebar's one closed frame per payload.

Limits: a connection opened before ``install()`` keeps disnake's own
decoding; one opened while installed keeps mijcodec's until it ends. A bot
that turned compression off (``GatewayParams(zlib=False)``) keeps it off.
Voice websockets are untouched. :func:`stats` counts connections, payloads and
codec errors handled by mijcodec.
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import ForkDropIn

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest disnake whose received_message / from_client / _format_gateway_url are as hooked here.
MIN_VERSION = (2, 9)

_dropin = ForkDropIn(
    "disnake",
    import_name="disnake",
    distribution="disnake",
    min_version=MIN_VERSION,
    from_json="_from_json",
    url_builders=("_format_gateway_url",),
    fill=False,  # disnake reads t/s/op/d with .get
    decoder=lambda compress: Decoder(compress),  # the module global, looked up per connection
)

install, uninstall, is_installed, stats = _dropin.api(__name__)
