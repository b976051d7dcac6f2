"""Where keys live on a Redis Cluster: hash-tag buckets (no I/O here).

A cluster hashes each key to one of 16,384 slots, and a multi-key command (``MGET``,
``MSET``, ``UNLINK``) must keep to one slot. Entries are spread over ``BUCKETS`` buckets
instead: an entry's bucket is the CRC-32 of its key modulo ``BUCKETS``, and its Redis key
carries the bucket's hash tag, ``prefix + "{tag}" + key``, so that a bucket is one slot and
a batch costs one command per bucket and one round trip per node. Bucket ``i``'s tag is the
smallest decimal number whose slot falls in the ``i``-th ``1/BUCKETS`` of the slots: the
buckets lie evenly over the slot range, so nodes that each serve a range of slots (as
``redis-cli --cluster create`` and ``rebalance`` assign them) get an even share of them.
"""

from __future__ import annotations

import zlib
from binascii import crc_hqx
from collections.abc import Iterable, Sequence

__all__ = ["BUCKETS", "SLOTS", "TAGS", "bucket_of", "by_bucket", "slot_of_bucket", "untag"]

SLOTS = 16384
#: Fixed: a new count would move every entry to another key (a cold cache). 256 buckets
#: keep a batch of 1,000 items to about 250 small MGETs, and still spread evenly over
#: dozens of primaries.
BUCKETS = 256


def _slot(text: str) -> int:
    return crc_hqx(text.encode(), 0) % SLOTS


def _tags() -> list[str]:
    """Each bucket's tag: the smallest decimal number whose slot is in its share."""
    tags: list[str | None] = [None] * BUCKETS
    missing, number = BUCKETS, 0
    while missing:
        share = _slot(str(number)) * BUCKETS // SLOTS
        if tags[share] is None:
            tags[share] = str(number)
            missing -= 1
        number += 1
    return [tag for tag in tags if tag is not None]


#: bucket -> its hash tag, braces included (``"{417}"``)
TAGS = ["{" + tag + "}" for tag in _tags()]
_SLOTS = [_slot(tag[1:-1]) for tag in TAGS]
_BUCKET_OF_TAG = {tag.encode(): bucket for bucket, tag in enumerate(TAGS)}


def bucket_of(key: str) -> int:
    """The bucket of an entry's key (a CRC-32 of its UTF-8 bytes: the same everywhere)."""
    return zlib.crc32(key.encode()) % BUCKETS


def slot_of_bucket(bucket: int) -> int:
    """The cluster slot every key of ``bucket`` hashes to."""
    return _SLOTS[bucket]


def by_bucket(keys: Iterable[str]) -> dict[int, list[str]]:
    """``keys`` grouped by bucket, each group in the order of ``keys``."""
    groups: dict[int, list[str]] = {}
    crc32 = zlib.crc32
    for key in keys:
        bucket = crc32(key.encode()) % BUCKETS
        group = groups.get(bucket)
        if group is None:
            groups[bucket] = [key]
        else:
            group.append(key)
    return groups


def untag(prefix: bytes, redis_keys: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """The (bucket, key after the tag) of each Redis key ``prefix + "{tag}" + key`` among
    ``redis_keys``; a key of another shape is left out."""
    found = []
    start = len(prefix)
    for redis_key in redis_keys:
        if not redis_key.startswith(prefix):
            continue
        end = redis_key.find(b"}", start)
        bucket = _BUCKET_OF_TAG.get(redis_key[start : end + 1]) if end > 0 else None
        if bucket is not None:
            found.append((bucket, redis_key[end + 1 :]))
    return found
