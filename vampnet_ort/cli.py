"""The ``vampnet-ort`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("vampnet-ort: command line not built yet")


if __name__ == "__main__":
    sys.exit(main())
