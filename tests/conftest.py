"""Test configuration: float64, several fake CPU devices, and the published-data folder.

* x64 is switched on here (tests of the float32 path switch it per call with ``jax.experimental``
  helpers), never by importing cevnsjax.
* ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before jax is imported so that
  sharding can be tested on a CPU.
* ``data_dir`` fixture: the folder named by ``$CEVNSJAX_DATA`` (default ``../shared/data``). Where it
  is absent the test is skipped with the reason; ``CEVNSJAX_REQUIRE_DATA=1`` (set by ``.ci/run``)
  turns that skip into a failure.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

from cevnsjax.io.location import ENV_VAR, data_dir as _data_dir  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    path = _data_dir()
    if path is None:
        msg = (
            f"published data folder not found (set ${ENV_VAR}, default ../shared/data); "
            "tests against real data need it"
        )
        if os.environ.get("CEVNSJAX_REQUIRE_DATA") == "1":
            pytest.fail(msg + " -- CEVNSJAX_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return path
