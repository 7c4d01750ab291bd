"""The ``cevnsjax`` command: ``--version``, ``demo`` (later issues add predict, fit, scan, unfold)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="cevnsjax", description="Differentiable CEvNS rates and inference in JAX")
    p.add_argument("--version", action="version", version=f"cevnsjax {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="SM recoil spectra for CsI, Ge, Ar at a reactor and a pion-DAR source (PNG + CSV)")
    d.add_argument("--out", required=True, help="output folder (created if missing)")
    d.add_argument("--points", type=int, default=200, help="recoil-energy points per spectrum (default 200)")
    d.set_defaults(func=_cmd_demo)
    return p


def _cmd_demo(args) -> int:
    from .demo import run_demo

    paths = run_demo(args.out, n_points=args.points)
    for path in paths:
        print(path)
    return 0


def main(argv=None) -> int:
    from .config import enable_x64

    enable_x64()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
