"""An asyncio Discord gateway client on aiohttp built on ``mijcodec``, with an embedded
gateway simulator (:mod:`gateway.testing`) and a command line (``python -m gateway``)."""
from .errors import (GatewayAuthError, GatewayClosedFatal, GatewayError, GatewayProtocolError,
                     RequestRateLimited, SubscriptionOverflow)
from .manager import ShardManager, load_sessions, parse_shard_ids, save_sessions
from .policy import (CLOSE_CODE_POLICY, FATAL_CLOSE_CODES, IDENTIFY_ANEW_CLOSE_CODES,
                     RECONNECT_CLOSE_CODE, ZOMBIE_CLOSE_CODE, CloseCode, ShardState,
                     classify_close)
from .protocols import (DispatchRecord, EventSink, IdentifyQueue, SessionState, SessionStore,
                        ShardLeases)
from .ratelimit import Backoff, IdentifyLimiter, MemoryIdentifyQueue, SendLimiter
from .shard import (DEFAULT_API_URL, GatewayEvent, LifecycleEvent, Shard, ShardMetrics,
                    default_compress, fetch_gateway_bot)
from .stores import FileSessionStore, MemorySessionStore

__all__ = [
    "Shard", "ShardManager", "GatewayEvent", "LifecycleEvent", "ShardMetrics", "SessionState",
    "ShardState", "CloseCode", "CLOSE_CODE_POLICY",
    "GatewayError", "GatewayClosedFatal", "GatewayAuthError", "GatewayProtocolError",
    "RequestRateLimited", "SubscriptionOverflow", "FATAL_CLOSE_CODES", "IDENTIFY_ANEW_CLOSE_CODES", "ZOMBIE_CLOSE_CODE",
    "RECONNECT_CLOSE_CODE", "DEFAULT_API_URL", "Backoff", "IdentifyLimiter",
    "MemoryIdentifyQueue", "SendLimiter", "MemorySessionStore", "FileSessionStore",
    "IdentifyQueue", "SessionStore", "ShardLeases", "EventSink", "DispatchRecord",
    "classify_close", "default_compress", "fetch_gateway_bot", "parse_shard_ids",
    "save_sessions", "load_sessions",
]
