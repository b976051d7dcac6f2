"""The circuit breaker's state, alone: what each call may do, whatever the outcomes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from batche.stores._circuit import PROBE, SKIP, USE, Circuit

# An action: a call enters, or the oldest call still in progress ends (ok, failed, left).
ACTIONS = st.lists(st.sampled_from(["enter", "ok", "fail", "leave"]), max_size=60)


def replay(circuit: Circuit, actions: list[str]) -> tuple[list[tuple[bool, int]], list[str]]:
    """The tickets handed out (with whether the circuit was open) and the transitions
    reported, checking as it goes that at most one probe is ever in progress."""
    tickets: list[tuple[bool, int]] = []
    open_calls: list[int] = []
    reported: list[str] = []
    for action in actions:
        if action == "enter":
            was_open = circuit.reopens is not None
            probing = PROBE in open_calls
            ticket = circuit.enter()
            tickets.append((was_open, ticket))
            if was_open and circuit.retry_after == 0:  # the back-off is over at once
                assert ticket == (SKIP if probing else PROBE)
            if ticket != SKIP:
                open_calls.append(ticket)
            assert open_calls.count(PROBE) <= 1
        elif open_calls:
            ticket = open_calls.pop(0)
            if action == "ok" and circuit.succeeded(ticket):
                reported.append("closed")
            elif action == "fail" and circuit.failed(ticket, "boom"):
                reported.append("opened")
            elif action == "leave":
                circuit.leave(ticket)
    return tickets, reported


@given(ACTIONS)
def test_trouble_and_recovery_are_reported_once_each_in_turn(actions: list[str]) -> None:
    _, reported = replay(Circuit(retry_after=0), actions)
    assert reported == ["opened", "closed"] * (len(reported) // 2) + ["opened"] * (
        len(reported) % 2
    )


@given(ACTIONS)
def test_an_open_circuit_is_skipped_until_retry_after(actions: list[str]) -> None:
    tickets, _ = replay(Circuit(retry_after=3600), actions)
    # within the hour after a failure, every call skips the store
    assert {ticket for was_open, ticket in tickets if was_open} <= {SKIP}
    assert {ticket for was_open, ticket in tickets if not was_open} <= {USE}


@given(ACTIONS)
def test_a_closed_circuit_lets_every_call_through(actions: list[str]) -> None:
    circuit = Circuit(retry_after=0)
    tickets, _ = replay(circuit, [a for a in actions if a != "fail"])
    assert {ticket for _, ticket in tickets} <= {USE}
