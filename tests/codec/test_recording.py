"""Thousands of realistic payloads, a multi-MB GUILD_CREATE among them, recorded
as zlib-stream (with split frames) and as zstd-stream both ways: every packet
equals json.loads of what was sent, and seq is the last s."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from tests._helpers import real_payloads, zlib_stream, zstd_closed_frames, zstd_open_frame


def _realistic(n: int = 3000, seed: int = 1234) -> list[bytes]:
    rng = random.Random(seed)
    templates = [json.loads(p) for p in real_payloads()]
    dispatches = [t for t in templates if t["op"] == 0]
    others = [t for t in templates if t["op"] != 0]
    out: list[bytes] = [b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\\"gateway-prd\\",{\\"micros\\":0.0}]"]}}']
    seq = 0
    words = ["hello", "wörld", "🙂", "naïve", "\\\"quoted\\\"", "tab\t", "line\nbreak", "\u2028", "x" * 50]
    for i in range(n):
        if i == n // 2:
            members = [
                {"user": {"id": str(10**17 + k), "username": f"member{k}", "global_name": rng.choice(words), "avatar": None, "bot": False},
                 "roles": [str(10**17 + rng.randrange(50)) for _ in range(rng.randrange(4))], "joined_at": "2024-02-27T19:50:51.701000+00:00",
                 "deaf": False, "mute": False, "flags": 0, "nick": None}
                for k in range(12000)
            ]
            seq += 1
            out.append(orjson.dumps({"t": "GUILD_CREATE", "s": seq, "op": 0, "d": {"id": "1", "name": "big", "members": members}}))
            continue
        if rng.random() < 0.08:
            template = rng.choice(others)
            out.append(orjson.dumps({"t": None, "s": None, "op": template["op"], "d": template.get("d")}))
            continue
        template = rng.choice(dispatches)
        d = template["d"]
        if isinstance(d, dict):
            d = dict(d)
            d["content"] = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 30)))
            d["id"] = str(rng.randrange(10**17, 10**18))
        seq += 1
        envelope = {"t": template["t"], "s": seq, "op": 0, "d": d}
        if rng.random() < 0.05:  # a server with another key order
            out.append(orjson.dumps({"op": 0, "d": d, "s": seq, "t": template["t"]}))
        else:
            out.append(orjson.dumps(envelope))
    return out


@pytest.fixture(scope="module")
def recording() -> list[bytes]:
    payloads = _realistic()
    assert max(map(len, payloads)) > 2 * 1024 * 1024
    return payloads


def _check(decoder, payloads, messages_per_payload):
    last_s = None
    for raw, messages in zip(payloads, messages_per_payload):
        results = [decoder.feed(m) for m in messages]
        assert all(r is None for r in results[:-1])
        pkt = results[-1]
        obj = json.loads(raw)
        assert (pkt.op, pkt.s, pkt.t) == (obj["op"], obj.get("s"), obj.get("t"))
        assert pkt.d == obj["d"]
        if obj["op"] == 0:
            last_s = obj["s"]
        assert decoder.seq == last_s
    assert decoder.payloads == len(payloads)


def test_zlib_stream_with_split_frames(codec, recording):
    rng = random.Random(7)
    split = []
    for m in zlib_stream(recording):
        cuts = sorted(rng.sample(range(1, len(m)), min(len(m) - 1, rng.randrange(0, 4))))
        parts = [m[a:b] for a, b in zip([0] + cuts, cuts + [len(m)])]
        split.append(parts)
    _check(codec.Decoder("zlib-stream"), recording, split)


def test_zstd_stream_one_open_frame(codec, recording):
    _check(codec.Decoder("zstd-stream"), recording, [[m] for m in zstd_open_frame(recording)])


def test_zstd_stream_one_closed_frame_per_payload(codec, recording):
    _check(codec.Decoder("zstd-stream"), recording, [[m] for m in zstd_closed_frames(recording)])


def test_plain_json_text_frames(codec, recording):
    first = recording[:500]
    _check(codec.Decoder(None), first, [[p.decode()] for p in first])
