"""Fixtures for the gateway tests: a simulator on 127.0.0.1 with a short heartbeat interval and
shards whose delays (op 9 wait, backoff, identify spacing) are injected to be tiny."""
from __future__ import annotations

from typing import Any

import pytest
from tests.gateway._helpers import INTERVAL, fast_shard

from gateway import Shard
from gateway.testing import GatewaySimulator


@pytest.fixture
async def sim():
    async with GatewaySimulator(heartbeat_interval=INTERVAL, seed=1234) as s:
        yield s


@pytest.fixture
async def shard_factory(sim):
    shards: list[Shard] = []

    def make(**kw: Any) -> Shard:
        sh = fast_shard(sim, **kw)
        shards.append(sh)
        return sh

    yield make
    for sh in shards:
        await sh.close()
