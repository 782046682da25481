"""An asyncio Discord gateway client on aiohttp built on ``mijcodec``, with an embedded
gateway simulator (:mod:`gateway.testing`) and a command line (``python -m gateway``)."""
from .manager import ShardManager, load_sessions, parse_shard_ids, save_sessions
from .ratelimit import Backoff, IdentifyLimiter, SendLimiter
from .shard import (DEFAULT_API_URL, FATAL_CLOSE_CODES, IDENTIFY_ANEW_CLOSE_CODES,
                    GatewayAuthError, GatewayClosedFatal, GatewayError, GatewayEvent,
                    LifecycleEvent, SessionState, Shard, ShardMetrics, classify_close,
                    RECONNECT_CLOSE_CODE, ZOMBIE_CLOSE_CODE, default_compress,
                    fetch_gateway_bot)

__all__ = [
    "Shard", "ShardManager", "GatewayEvent", "LifecycleEvent", "ShardMetrics", "SessionState",
    "GatewayError", "GatewayClosedFatal", "GatewayAuthError", "FATAL_CLOSE_CODES",
    "IDENTIFY_ANEW_CLOSE_CODES", "ZOMBIE_CLOSE_CODE", "RECONNECT_CLOSE_CODE", "DEFAULT_API_URL", "Backoff", "IdentifyLimiter", "SendLimiter",
    "classify_close", "default_compress", "fetch_gateway_bot", "parse_shard_ids",
    "save_sessions", "load_sessions",
]
