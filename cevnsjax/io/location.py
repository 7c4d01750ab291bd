"""Where published data live: one setting, ``CEVNSJAX_DATA`` (default ``../shared/data``).

Real data are never shipped with the package; loaders take a path. This module resolves the
default folder for tests, scripts and the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CEVNSJAX_DATA"
DEFAULT = "../shared/data"


def data_dir(required: bool = False) -> Path | None:
    """Return the data folder named by ``$CEVNSJAX_DATA`` (default ``../shared/data``).

    Relative paths are taken from the current directory. Returns ``None`` when the folder is absent,
    or raises ``FileNotFoundError`` naming the setting when ``required``.
    """
    path = Path(os.environ.get(ENV_VAR, DEFAULT)).expanduser()
    if path.is_dir():
        return path.resolve()
    if required:
        raise FileNotFoundError(
            f"data folder {str(path)!r} (from ${ENV_VAR}, default {DEFAULT!r}) does not exist; "
            f"set {ENV_VAR} to the folder holding the published data (e.g. shared/data)"
        )
    return None
