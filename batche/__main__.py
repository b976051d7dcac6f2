"""``python -m batche``: the demo (and, with persistent stores, cache inspection)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: python -m batche COMMAND [options]

commands:
  demo               run an embedding workload with and without batche and compare them
  stats URL          entries, bytes, namespaces and versions of a store
  clear URL [--namespace N [--version V]]
                     remove a store's entries (all, or one namespace or version)

URL: sqlite:///relative/path.db, sqlite:////absolute/path.db or redis://host:port/db
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from ._demo import main as demo

        return demo(rest)
    if command in ("stats", "clear"):
        from ._cli import main as cli

        return cli(command, rest)
    sys.stderr.write(f"python -m batche: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
