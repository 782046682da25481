"""mijcodec for py-cord (>= 2.6): one call, no other change to the bot.

::

    import mijcodec.compat.pycord
    mijcodec.compat.pycord.install()                       # zlib-stream, py-cord's own choice
    mijcodec.compat.pycord.install(compress="zstd-stream") # zstd-stream, which py-cord lacks

py-cord installs the import name ``discord``, like discord.py. Which of the two
is installed is read from importlib.metadata (the distribution owning the
imported package): this refuses discord.py and points at
:mod:`mijcodec.compat.discord_py`, which refuses py-cord likewise.

Hooks (see :class:`mijcodec.compat._dpy_family.ForkDropIn` for what each does):
``discord.gateway.DiscordWebSocket.__init__`` (a per-connection
``received_message``), ``discord.utils._from_json`` (the dict already parsed),
and, for zstd-stream only, ``discord.http.HTTPClient.get_gateway`` and
``get_bot_gateway``, which format the gateway URL inline.

py-cord parses with msgspec when it is installed, else the stdlib json; the
drop-in parses with orjson: the same dict for any JSON Discord sends (a payload
only those accept, such as an integer beyond 64 bits or NaN, is a codec error
here and the connection resumes).

Reproduced against stock py-cord 2.8 in the tests and fixed here: a corrupt
frame (``zlib.error`` escapes ``Client.connect``: the bot is dead), a split
``00 00 ff ff`` suffix (two payloads glued: JSON "Extra data"). py-cord 2.8's
own ``Client.close()`` may end ``start()`` with "Session is closed" (it closes
its HTTP session before the websocket), installed or not.
"""

from __future__ import annotations

from mijcodec import Decoder

from ._dpy_family import fork_dropin

__all__ = ["install", "uninstall", "is_installed", "stats", "MIN_VERSION"]

#: Oldest py-cord whose received_message / from_client / get_gateway are as hooked here.
MIN_VERSION = (2, 6)

# Decoder is looked up per connection, so that tests can point it at either implementation
_dropin = fork_dropin("py-cord", MIN_VERSION, lambda compress: Decoder(compress))

install, uninstall, is_installed, stats = _dropin.api(__name__)
