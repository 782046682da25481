"""What a shard counts (``shard.metrics`` / ``snapshot_metrics()``)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ShardMetrics"]


@dataclass
class ShardMetrics:
    latency: float | None = None          # last heartbeat round trip, seconds
    latency_avg: float | None = None      # exponential moving average
    heartbeats_sent: int = 0
    heartbeat_acks: int = 0
    connects: int = 0
    reconnects: int = 0
    identifies: int = 0
    resume_attempts: int = 0
    resumes: int = 0                      # RESUMED received
    invalid_sessions: int = 0
    zombies: int = 0
    codec_errors: int = 0
    protocol_errors: int = 0              # bad HELLO / READY from the server
    ready_timeouts: int = 0
    resume_url_fallbacks: int = 0
    dispatches: int = 0                   # delivered (after de-duplication)
    duplicates: int = 0                   # replayed dispatches dropped
    seq_gaps: int = 0
    sink_full: int = 0                    # sink.offer() said no: closed, waited, resumed
    payloads_in: int = 0
    bytes_in: int = 0                     # on the wire (compressed)
    bytes_decompressed: int = 0
    payloads_out: int = 0
    bytes_out: int = 0
    loop_blocked: int = 0
    max_loop_lag: float = 0.0
    close_codes: list = field(default_factory=list)

    @property
    def compression_ratio(self) -> float | None:
        return self.bytes_decompressed / self.bytes_in if self.bytes_in else None
