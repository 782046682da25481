"""mijcodec for nextcord (>= 3.0; nextcord 3 needs Python >= 3.12): one call.

::

    import mijcodec.compat.nextcord
    mijcodec.compat.nextcord.install()            # before bot.run()/start()
    # or install(compress="zstd-stream"): nextcord gets zstd-stream, which it lacks

nextcord inflates zlib-stream inline in ``DiscordWebSocket.received_message``
(``self._zlib``/``self._buffer``; no decompression-context class, no zstd).
``install(compress=None)`` patches (``uninstall()`` restores them):

``nextcord.gateway.DiscordWebSocket.__init__``
    each websocket made while installed gets its own ``received_message``
    (an instance attribute): a binary message is decoded by a per-connection
    :class:`mijcodec.Decoder` (for the ``compress=`` of the URL it connected
    to), then nextcord's own ``received_message`` gets the text, so
    ``on_socket_raw_receive`` still gets a ``str``.
``nextcord.utils.from_json``
    handed that very text (an identity check), returns the dict mijcodec's
    path already parsed with orjson, with an absent ``t``/``s``/``d`` added as
    None: nextcord indexes ``message["s"]`` and dies (KeyError) on Spacebar's
    HELLO ``{"op":10,"d":{...}}``. Anything else goes to nextcord's original.
``nextcord.http.HTTPClient.format_websocket_url``
    only with ``install(compress="zstd-stream")``: the URL it builds asks for
    ``compress=zstd-stream`` instead of ``zlib-stream`` (``get_gateway``,
    ``get_bot_gateway`` and the resume URL all go through it).

A codec error (corrupt frame, payload over the size cap, not JSON) closes the
connection with 4000 and raises nextcord's ``ReconnectWebSocket``, so the
client RESUMEs and the server replays what was lost (a payload that is not
JSON is first dispatched to ``on_socket_raw_receive``, as stock does). Fixed
with ``install()`` in effect, each reproduced against stock nextcord 3.2 in
the tests: a corrupt frame (stock: ``zlib.error`` escapes ``Client.connect``),
a ``00 00 ff ff`` suffix split across messages (stock: JSON "Extra data"),
Spacebar's HELLO without ``s`` (stock: KeyError before READY), zstd-stream
including Spacebar's one closed frame per payload.

Limits: a connection opened before ``install()`` keeps nextcord's own
decoding; one opened while installed keeps mijcodec's until it ends. Voice
websockets are untouched. :func:`stats` counts connections, payloads and codec
errors handled by mijcodec.
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import ForkDropIn

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest nextcord whose received_message / from_client / format_websocket_url are as hooked here.
MIN_VERSION = (3, 0)

_dropin = ForkDropIn(
    "nextcord",
    import_name="nextcord",
    distribution="nextcord",
    min_version=MIN_VERSION,
    from_json="from_json",
    url_builders=("format_websocket_url",),
    fill=True,  # nextcord indexes message["op"], ["d"], ["s"]
    decoder=lambda compress: Decoder(compress),  # the module global, looked up per connection
)

install, uninstall, is_installed, stats = _dropin.api(__name__)
