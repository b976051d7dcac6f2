"""Computing the misses of a call: claim them, call the function, store, merge.

The engine of a call with misses is a generator that does no I/O: it yields
instructions (``_instructions.py``) that a driver (``_drivers.py``) carries out, so a
sync and an async function share every rule. A caller claims the misses nobody has in
flight, computes them chunk by chunk (with ``lock=True``, only the keys it leases),
joins the flights of others, and merges everything in input order.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Hashable
from itertools import filterfalse
from typing import Any

from ._chunking import CallCosts, call_items, total_cost
from ._inflight import Flight, Flights, Run
from ._instructions import Call, Engine, Invoke, Pace, Spawn, Wait
from ._isolation import Failed, halving, outcome
from ._plan import Plan, has_miss, plan
from ._results import assemble, result_rows


class Computing(CallCosts):
    """The engine of a call with misses: flights, leases, chunks, the merge."""

    def compute(self, call: Call, flights: Flights, *, inline: bool) -> Engine:
        """Get the distinct misses of ``call``: claim, compute or join them, then merge."""
        if self.remote is not None:
            call.values = yield from self._read_remote(call.keys, call.values)
            if call.values is not None and not has_miss(call.values):
                if self.cost is not None:
                    self.saved_by_hits(self.cost, call.keys, call_items(call))
                return self._all_hits(call.values)
        todo_plan = plan(call.keys, call.values)
        todo = todo_plan.todo
        step = self.max_batch_size or len(todo) or 1
        cut, total = (None, 0) if self.cost is None else self.plan_costs(self.cost, call)
        run, mine, joined, stale = flights.claim(
            todo, step, call.generation, todo_plan.distinct, cut
        )
        if stale and mine:
            # A flight finished after our lookup: what it stored is not computed again.
            claimed = [k for flight in mine for k in flight.keys]
            present = yield from self._present(claimed)
            for flight in mine:
                flight.early = {k: present[k] for k in flight.keys if k in present}
        sending = 0
        for flight in mine:
            sending += len(flight.keys) - len(flight.early)
        with self._lock:
            self.hits += len(call.keys) - sending
            if joined:
                self.joined += sum(len(wanted) for _, wanted in joined)
        if call.costs is not None:
            self.saved_by_claim(call.costs, total, mine)
        if run is not None:
            if inline:
                yield from self.run_flights(call, todo_plan, mine, flights, run)
            else:
                yield Spawn(self.run_flights(call, todo_plan, mine, flights, None), run)
        waits = [flight for flight in mine if not flight.done]
        waits += [flight for flight, _ in joined if not flight.done]
        if waits:
            yield Wait(waits)
        if len(mine) == 1 and not joined and todo_plan.whole and mine[0].raw is not None:
            return mine[0].raw  # one call computed the whole batch, in order: the answer
        found: dict[Hashable, Any] = {}
        for flight in mine:
            found.update(flight.mapping())
        for flight, wanted in joined:
            found.update(zip(wanted, flight.outcome(wanted)))
        if self.api is None or self.isolates is None:
            return assemble(todo_plan.merge(found), self.template)
        where = (self.fname, self.shown_names)
        return outcome(todo_plan.merge(found), self.template, where, self.api.return_exceptions)

    def run_flights(
        self,
        call: Call,
        todo_plan: Plan,
        mine: list[Flight],
        flights: Flights,
        run: Run | None,
    ) -> Engine:
        """Compute this caller's flights, chunk by chunk: call, check, store, finish."""
        positions = None
        if not (self.items_are_keys and len(call.seqs) == 1 and not _is_array(call.sources[0])):
            positions = dict(zip(todo_plan.todo, todo_plan.firsts()))
        for index, flight in enumerate(mine):
            try:
                pending = list(flight.keys)
                if flight.early:  # some were found in the store meanwhile
                    pending = list(filterfalse(flight.early.__contains__, pending))
                while pending:
                    if self.lock_timeout is None:
                        yield from self._compute_keys(
                            call, todo_plan, flight, pending, positions, run
                        )
                        break
                    pending = yield from self._compute_leased(
                        call, todo_plan, flight, pending, positions, run
                    )
            except BaseException as exc:
                # Every waiter of this flight and of the ones not run gets the error;
                # nothing of them was stored.
                for failed in mine[index:]:
                    flights.finish(failed, exc)
                raise
            flights.finish(flight)
        return None

    def _compute_leased(
        self,
        call: Call,
        todo_plan: Plan,
        flight: Flight,
        pending: list[Hashable],
        positions: dict[Hashable, int] | None,
        run: Run | None,
    ) -> Engine:
        """With ``lock=True``: compute the keys we lease, follow the ones others lease.

        Returns the keys still to do: those whose lease was given back without a value
        (their holder failed) or expired (their holder died).
        """
        timeout = self.lock_timeout
        token = uuid.uuid4().hex
        leased = yield from self.store_io("lease_many", pending, token, timeout)
        if leased:
            try:
                # Checked again under the lease: a holder may have stored a key and given
                # its lease back since our lookup (or since a follow that found no value
                # and no lease), and its value is not to be computed twice.
                stored = yield from self.read_remote(leased)
                flight.early.update(stored)
                with self._lock:
                    self.hits += len(stored)
                missing = [key for key in leased if key not in stored] if stored else leased
                if missing:
                    yield from self._compute_keys(call, todo_plan, flight, missing, positions, run)
            finally:
                yield from self.store_io("release_many", leased, token)
        taken = set(leased)
        others = [key for key in pending if key not in taken]
        if not others:
            return []
        found = yield from self.store_io("follow_many", others, timeout)
        flight.early.update(found)
        with self._lock:
            self.hits += len(found)
            self.joined += len(found)
        return [key for key in others if key not in found]

    def _compute_keys(
        self,
        call: Call,
        todo_plan: Plan,
        flight: Flight,
        keys: list[Hashable],
        positions: dict[Hashable, int] | None,
        run: Run | None,
    ) -> Engine:
        """Call the function on ``keys``, check its results, store them, keep them.

        With ``isolate=``, a matching failure splits the keys in halves, recursively
        (``_isolation.py``); the keys that fail alone are kept as ``Failed``.
        """
        with self._lock:
            self.misses += len(keys)
        paid = self.paid(call, keys)

        def attempt(part: list[Hashable]) -> Engine:
            cost = paid if part is keys or call.costs is None else total_cost(call.costs, part)
            return self._invoke(call, part, positions, run, cost)

        def accept(part: list[Hashable], out: Any) -> Engine:
            return self._accept(todo_plan, flight, part, out)

        if self.isolates is None:
            yield from accept(keys, (yield from attempt(keys)))
            return
        failed: dict[Hashable, Failed] = {}

        def reject(key: Hashable, error: Exception) -> None:
            failed[key] = Failed(error)

        yield from halving(keys, attempt, accept, reject, self.isolates)
        if failed:
            flight.record(list(failed), list(failed.values()), None)

    def _invoke(
        self,
        call: Call,
        keys: list[Hashable],
        positions: dict[Hashable, int] | None,
        run: Run | None,
        cost: float,
    ) -> Engine:
        """Wait for the rate limit, if any, then call the function on ``keys``."""
        if positions is None:  # the keys are the items themselves
            batches: tuple[Any, ...] = (keys,)
        else:
            batches = _miss_batches(call, list(map(positions.__getitem__, keys)))
        args, kwargs = self.binder.rebuild(call.args, call.kwargs, batches)
        if self.rate_limit is not None:
            yield Pace(self.rate_limit, cost)
        return (yield Invoke(args, kwargs, run))

    def _accept(self, todo_plan: Plan, flight: Flight, keys: list[Hashable], out: Any) -> Engine:
        """Check what the function returned for ``keys``, store it, keep it in the flight."""
        rows, self.template = result_rows(out, len(keys), self.fname, self.shown_names)
        yield from self._keep(todo_plan, keys, rows)
        flight.record(keys, rows, out if self.template is not None else rows)


def _miss_batches(call: Call, firsts: list[int]) -> tuple[Any, ...]:
    """Each batch argument cut down to the items at ``firsts``, in the caller's type."""
    batches = []
    for source, seq in zip(call.sources, call.seqs):
        if _is_array(source):
            np = sys.modules["numpy"]
            batches.append(source[np.asarray(firsts, dtype=np.intp)])
        else:
            batches.append(list(map(seq.__getitem__, firsts)))
    return tuple(batches)


def _is_array(obj: Any) -> bool:
    """True for a numpy array (without importing numpy when nobody else has)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)
