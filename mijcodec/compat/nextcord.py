"""mijcodec for nextcord (>= 3.0, which needs Python >= 3.12): one call.

::

    import mijcodec.compat.nextcord
    mijcodec.compat.nextcord.install()                       # zlib-stream, nextcord's own choice
    mijcodec.compat.nextcord.install(compress="zstd-stream") # zstd-stream, which nextcord lacks

Hooks (see :class:`mijcodec.compat._dpy_family.ForkDropIn` for what each does):
``nextcord.gateway.DiscordWebSocket.__init__`` (a per-connection
``received_message``), ``nextcord.utils.from_json`` (the dict already parsed)
and, for zstd-stream only, ``nextcord.http.HTTPClient.format_websocket_url``,
through which ``get_gateway``, ``get_bot_gateway`` and the resume URL all go.

nextcord indexes ``message["op"]``, ``["d"]`` and ``["s"]``, so the dict it gets
has an absent ``t``/``s``/``d`` added as None: stock nextcord dies with
KeyError 's' before READY on Spacebar's HELLO ``{"op":10,"d":{...}}``.
Reproduced against stock nextcord 3.2 in the tests and fixed here, besides:
a corrupt frame (``zlib.error`` escapes ``Client.connect``), a split
``00 00 ff ff`` suffix (two payloads glued: JSON "Extra data").
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import fork_dropin

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest nextcord whose received_message / from_client / format_websocket_url are as hooked here.
MIN_VERSION = (3, 0)

# Decoder is looked up per connection, so that tests can point it at either implementation
_dropin = fork_dropin("nextcord", MIN_VERSION, lambda compress: Decoder(compress))

install, uninstall, is_installed, stats = _dropin.api(__name__)
