"""Where published data live: ``$CEVNSJAX_DATA``, else the per-user data folder of ``platformdirs``.

Real data are never shipped with the package (``cevnsjax data fetch --from SOURCE`` copies them in);
loaders take a path. The built-in default never depends on the current directory; a relative
``$CEVNSJAX_DATA`` is the user's explicit choice and is resolved once against the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "CEVNSJAX_DATA"
FETCH_HINT = "cevnsjax data fetch --from PATH_OR_URL"


def default_data_dir() -> Path:
    """The built-in data folder: ``platformdirs.user_data_dir("cevnsjax")`` (absolute, per user)."""
    return Path(platformdirs.user_data_dir("cevnsjax")).resolve()


def data_root() -> Path:
    """The data folder in use, existing or not: ``$CEVNSJAX_DATA`` if set and non-empty, else the default."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser().resolve() if env else default_data_dir()


def data_dir(required: bool = False) -> Path | None:
    """Return the data folder (:func:`data_root`) when it exists.

    Returns ``None`` when the folder is absent, or raises ``FileNotFoundError`` naming the setting and the
    command that fetches the data when ``required``.
    """
    path = data_root()
    if path.is_dir():
        return path
    if required:
        src = f"${ENV_VAR}" if os.environ.get(ENV_VAR, "").strip() else f"the default (${ENV_VAR} unset)"
        raise FileNotFoundError(
            f"data folder {str(path)!r} (from {src}) does not exist; get the published data with "
            f"`{FETCH_HINT}` or set {ENV_VAR} to the folder holding them"
        )
    return None
