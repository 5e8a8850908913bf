"""How tests start the command line: the installed `vampnet-ort` script, as a user would run it.

`python -m vampnet_ort.cli` would put the working directory first on sys.path, so inside a checkout the source
tree (without its compiled libraries) could shadow the installed package.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "vampnet-ort"
    if script.is_file():
        return [str(script)]
    found = shutil.which("vampnet-ort")
    if found:
        return [found]
    return [sys.executable, "-m", "vampnet_ort.cli"]
