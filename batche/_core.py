"""``_Core``: the engine of one decorated function, from its parts.

Data flows one way: bind the call -> make keys -> look them up (``_calls.py``) -> call
the function on the distinct misses -> check the results -> store them -> merge in input
order (``_computing.py``, reading and writing through ``_store_access.py``). The state
all of them share is set up in ``_state.py``.
"""

from __future__ import annotations

from ._calls import CallPlanning
from ._computing import Computing


class _Core(CallPlanning, Computing):
    """Everything one decorated function knows, shared by its sync and async wrapper."""
