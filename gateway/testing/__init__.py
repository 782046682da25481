"""An in-process Discord gateway simulator for tests and the demo, in three parts:

* :mod:`gateway.testing.simulator`: :class:`GatewaySimulator`, an aiohttp application on
  127.0.0.1 (random free port) serving ``GET /api/v10/gateway/bot`` and the gateway websocket
  (``/gateway`` and the resume path) with per-session event logs, RESUME replay, a record of
  everything clients send, and scripted faults;
* :mod:`gateway.testing.traffic`: realistic dispatches (:func:`make_event`,
  :class:`EventSource`);
* :mod:`gateway.testing.verify`: :func:`verify_delivery` and the bounded-memory
  :class:`DeliveryVerifier`.

Only the standard library compressors (``zlib``, ``backports.zstd``) are used, so it does not
depend on the codec under test, and only aiohttp's public API.

Usage::

    async with GatewaySimulator(heartbeat_interval=0.1) as sim:
        shard = Shard(sim.token, api_url=sim.api_url, ...)
        sim.dispatch("MESSAGE_CREATE", {...})
        await sim.send_reconnect()
"""
from .simulator import (FATAL_REASONS, ClientPayload, GatewaySimulator, SimConnection, SimEvent,
                        SimSession, _free_port)  # noqa: F401  (_free_port: tests)
from .traffic import EventSource, make_event
from .verify import DeliveryVerifier, verify_delivery

__all__ = ["GatewaySimulator", "SimSession", "SimConnection", "SimEvent", "ClientPayload",
           "EventSource", "make_event", "verify_delivery", "DeliveryVerifier", "FATAL_REASONS"]
