"""An item that counts the dict operations made on it: how tests check an algorithm's cost
without timing it."""

from __future__ import annotations


class Counted:
    """A hashable item that counts how often it is hashed (once per dict operation)."""

    hashes = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __hash__(self) -> int:
        Counted.hashes += 1
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counted) and other.value == self.value
