"""mijcodec for disnake (>= 2.9): one call, no other change to the bot.

::

    import mijcodec.compat.disnake
    mijcodec.compat.disnake.install()                       # zlib-stream, disnake's own choice
    mijcodec.compat.disnake.install(compress="zstd-stream") # zstd-stream, which disnake 2.12 lacks

Hooks (see :class:`mijcodec.compat._dpy_family.ForkDropIn` for what each does):
``disnake.gateway.DiscordWebSocket.__init__`` (a per-connection
``received_message``), ``disnake.utils._from_json`` (the dict already parsed)
and, for zstd-stream only, ``disnake.http.HTTPClient._format_gateway_url``,
through which ``from_client``, ``get_gateway`` and ``get_bot_gateway`` go.

Decompression contexts: disnake 2.12.2, the newest release, inflates inline
(``self._zlib``/``self._buffer``); its main branch has since added
per-connection contexts (``gateway._decompressor_for_params``,
``ws._decompressor``, zstd-stream included). No release has them, so the
drop-in hooks what both have: handed a ``str``, ``received_message`` skips
whichever decompression it would have done; ``install()`` keeps the
compression disnake picks itself (main: zstd-stream, from ``GatewayParams``).
CI tests 2.12; the drop-in tests also pass against main (commit 3bad63c, run by
hand). A bot that turned compression off (``GatewayParams(zlib=False)``) keeps it off.
Reproduced against stock disnake 2.12 in the tests and fixed here: a corrupt
frame (``zlib.error`` escapes ``Client.connect``), a split ``00 00 ff ff``
suffix (two payloads glued: JSON "Extra data").
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import fork_dropin

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest disnake whose received_message / from_client / _format_gateway_url are as hooked here.
MIN_VERSION = (2, 9)

# Decoder is looked up per connection, so that tests can point it at either implementation
_dropin = fork_dropin("disnake", MIN_VERSION, lambda compress: Decoder(compress))

install, uninstall, is_installed, stats = _dropin.api(__name__)
