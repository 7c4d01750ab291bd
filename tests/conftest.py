"""Test configuration: float64, several fake CPU devices, and the published-data folder.

* x64 is switched on here (tests of the float32 path switch it per call with ``jax.experimental``
  helpers), never by importing cevnsjax.
* ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before jax is imported so that
  sharding can be tested on a CPU.
* ``data_dir`` fixture: the folder named by ``$CEVNSJAX_DATA``; the tests' default (set here, for
  subprocesses too) is ``../shared/data`` relative to the repository -- the package's own default is
  the per-user data folder (:mod:`cevnsjax.io.location`). Where it is absent the test is skipped
  with the reason; ``CEVNSJAX_REQUIRE_DATA=1`` (set by ``.ci/run``)
  turns that skip into a failure.
"""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
REPO = Path(__file__).resolve().parents[1]
TESTS_DATA_DEFAULT = str((REPO.parent / "shared" / "data").resolve())
if not os.environ.get("CEVNSJAX_DATA", "").strip():
    os.environ["CEVNSJAX_DATA"] = TESTS_DATA_DEFAULT

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

from cevnsjax.io.location import ENV_VAR, data_dir as _data_dir  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    path = _data_dir()
    if path is None:
        msg = (
            f"published data folder {os.environ[ENV_VAR]!r} not found (set ${ENV_VAR}, tests' default ../shared/data "
            "next to the repository; `cevnsjax data fetch --from PATH_OR_URL` gets it); "
            "tests against real data need it"
        )
        if os.environ.get("CEVNSJAX_REQUIRE_DATA") == "1":
            pytest.fail(msg + " -- CEVNSJAX_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return path
