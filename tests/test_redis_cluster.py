"""RedisStore on a real Redis Cluster: keys spread over hash-tag buckets, one round trip per
node, everything a single node does (ttl, deletes, clear, len, leases, the CLI)."""

from __future__ import annotations

import pytest

from ._cluster import Cluster

pytestmark = pytest.mark.redis


def test_the_session_cluster_serves_every_slot_from_three_primaries(
    redis_cluster: Cluster,
) -> None:
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3
    info = primaries[0].command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info
    assert "cluster_slots_assigned:16384" in info
