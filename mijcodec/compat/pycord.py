"""mijcodec for py-cord (>= 2.6): one call, no other change to the bot.

::

    import mijcodec.compat.pycord
    mijcodec.compat.pycord.install()              # before bot.run()/start()
    # or install(compress="zstd-stream"): py-cord gets zstd-stream, which it lacks

py-cord installs the import name ``discord``, like discord.py; which one is
installed is read from importlib.metadata (the distribution that owns the
imported ``discord`` package), so this refuses discord.py (use
:mod:`mijcodec.compat.discord_py`) and that one refuses py-cord.

py-cord inflates zlib-stream inline in ``DiscordWebSocket.received_message``
(``self._zlib``/``self._buffer``; no decompression-context class, no zstd).
``install(compress=None)`` patches (``uninstall()`` restores them):

``discord.gateway.DiscordWebSocket.__init__``
    each websocket made while installed gets its own ``received_message``
    (an instance attribute): a binary message is decoded by a per-connection
    :class:`mijcodec.Decoder` (for the ``compress=`` of the URL it connected
    to), then py-cord's own ``received_message`` gets the text, so
    ``on_socket_raw_receive`` still gets a ``str``.
``discord.utils._from_json``
    handed that very text (an identity check), returns the dict mijcodec's
    path already parsed with orjson; anything else goes to py-cord's original.
``discord.http.HTTPClient.get_gateway`` / ``get_bot_gateway``
    only with ``install(compress="zstd-stream")``: the URL they build asks for
    ``compress=zstd-stream`` instead of ``zlib-stream``.

A codec error (corrupt frame, payload over the size cap, not JSON) closes the
connection with 4000 and raises py-cord's ``ReconnectWebSocket``, so the client
RESUMEs and the server replays what was lost (a payload that is not JSON is
first dispatched to ``on_socket_raw_receive``, as stock does). Fixed with
``install()`` in effect, each reproduced against stock py-cord 2.8 in the
tests: a corrupt frame (stock: ``zlib.error`` escapes ``Client.connect``), a
``00 00 ff ff`` suffix split across messages (stock glues two payloads: JSON
"Extra data"), zstd-stream including Spacebar's one closed frame per payload.

Limits: a connection opened before ``install()`` keeps py-cord's own
decoding; one opened while installed keeps mijcodec's until it ends. Voice
websockets are untouched. :func:`stats` counts connections, payloads and codec
errors handled by mijcodec.
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import ForkDropIn

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest py-cord whose received_message / from_client / get_gateway are as hooked here.
MIN_VERSION = (2, 6)

_dropin = ForkDropIn(
    "py-cord",
    import_name="discord",
    distribution="py-cord",
    min_version=MIN_VERSION,
    from_json="_from_json",
    url_builders=("get_gateway", "get_bot_gateway"),
    fill=False,  # py-cord reads t/s/op/d with .get
    decoder=lambda compress: Decoder(compress),  # the module global, looked up per connection
)

install, uninstall, is_installed, stats = _dropin.api(__name__)
