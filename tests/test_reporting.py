"""cevnsjax.reporting: JSON of NumPy/JAX values (NaN -> null, atomic write), fit summaries, bounds margins."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cevnsjax.reporting import Timer, fit_summary, inside_bounds, jsonable, write_json


def test_jsonable_converts_numpy_and_non_finite():
    import jax.numpy as jnp

    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": (np.int64(2), Path("x/y")), "d": float("nan"),
           "e": jnp.asarray([1.0, np.inf]), 3: np.bool_(True)}
    out = jsonable(obj)
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": [2, "x/y"], "d": None, "e": [1.0, None], "3": True}
    json.dumps(out, allow_nan=False)  # strictly valid JSON


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path):
    p = write_json(tmp_path / "sub" / "s.json", {"x": np.float64(2.0)})
    assert json.loads(p.read_text()) == {"x": 2.0}
    with pytest.raises(TypeError):
        write_json(p, {"bad": object()})
    assert json.loads(p.read_text()) == {"x": 2.0}  # the old file survives a failed write
    assert sorted(x.name for x in p.parent.iterdir()) == ["s.json"]


def test_fit_summary_fields():
    fit = SimpleNamespace(minus2lnL=np.float64(3.5), best_fit={"q": np.float64(-2e-4)}, errors={"q": 7e-5},
                          free_names=("q",), converged=np.bool_(True), message="")
    s = fit_summary(fit)
    assert s == {"chi2": 3.5, "params": {"q": -2e-4}, "errors": {"q": 7e-5}, "free": ["q"], "converged": True,
                 "message": ""}


def test_inside_bounds_moves_values_off_the_bounds():
    class M:
        priors = {"a": None, "b": None, "c": None}

        @staticmethod
        def bounds():
            return {"a": (0.0, 10.0), "b": (1e-7, 1e-3), "c": (0.0, None)}

    out = inside_bounds({"a": 0.0, "b": 1e-7, "c": 0.0, "unknown": 1.0}, M())
    assert set(out) == {"a", "b", "c"}
    assert out["a"] == pytest.approx(1e-3)                      # frac 1e-4 of the range
    assert out["b"] > 1e-7 and out["b"] == pytest.approx(1e-7 + 1e-4 * (1e-3 - 1e-7))
    assert out["c"] > 0.0
    assert inside_bounds({"a": 5.0}, M()) == {"a": 5.0}         # interior values unchanged


def test_timer_measures_wall_time():
    import time

    with Timer() as t:
        assert math.isnan(t.s)
        time.sleep(0.02)
    assert 0.015 < t.s < 1.0
