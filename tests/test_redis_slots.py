"""Where keys live on a Redis Cluster: buckets by a stable digest, tags spread over the
slots, Redis keys read back to their bucket and key."""

from __future__ import annotations

import subprocess
import sys
import zlib

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from batche.stores._redis_slots import (
    BUCKETS,
    SLOTS,
    TAGS,
    bucket_of,
    by_bucket,
    slot_of_bucket,
    untag,
)


def test_each_bucket_has_its_own_tag_in_its_own_share_of_the_slots() -> None:
    assert len(TAGS) == len(set(TAGS)) == BUCKETS == 256
    for bucket, tag in enumerate(TAGS):
        slot = key_slot(f"batche:{tag}any:1:key".encode())  # the tag decides the slot
        assert slot == slot_of_bucket(bucket)
        assert slot * BUCKETS // SLOTS == bucket
    assert TAGS[:4] == ["{460}", "{14}", "{278}", "{10}"]  # fixed: entries never move


def test_three_primaries_of_equal_ranges_get_an_equal_share_of_buckets() -> None:
    # what redis-cli --cluster create assigns: 0-5460, 5461-10922, 10923-16383
    owners = [min(slot_of_bucket(b) * 3 // SLOTS, 2) for b in range(BUCKETS)]
    assert sorted(owners.count(node) for node in range(3)) == [85, 85, 86]


def test_a_keys_bucket_is_its_crc32_the_same_in_every_process() -> None:
    assert bucket_of("ns:1:abc") == zlib.crc32(b"ns:1:abc") % 256
    script = "from batche.stores._redis_slots import bucket_of; print(bucket_of('ns:1:abc'))"
    seeds = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert seeds == {str(bucket_of("ns:1:abc"))}


@given(st.lists(st.text(min_size=0, max_size=20)), st.sampled_from(["batche:", "app", ""]))
def test_redis_keys_read_back_to_their_bucket_and_key(keys: list[str], prefix: str) -> None:
    groups = by_bucket(keys)
    assert sorted(k for group in groups.values() for k in group) == sorted(keys)
    for bucket, group in groups.items():
        assert all(bucket_of(key) == bucket for key in group)
        assert [k for k in keys if bucket_of(k) == bucket] == group  # in order
    redis_keys = [(prefix + TAGS[bucket_of(k)] + k).encode() for k in keys]
    assert untag(prefix.encode(), redis_keys) == [(bucket_of(k), k.encode()) for k in keys]


def test_keys_of_another_shape_are_left_out() -> None:
    assert (
        untag(b"batche:", [b"batche:ns:1:a", b"batche:{x}a", b"other:{14}a", b"batche:{14"]) == []
    )
    assert untag(b"batche:", [b"batche:{14}ns:1:a"]) == [(1, b"ns:1:a")]
