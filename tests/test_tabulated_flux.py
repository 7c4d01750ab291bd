"""Two-column reader and TabulatedFlux (small files written to tmp_path; no published data)."""

import bz2

import numpy as np
import pytest

from cevnsjax.sources.tabulated import TableInterpolator, TabulatedFlux, read_two_column

E = np.array([0.5, 1.0, 2.0, 3.5, 5.0])
Y = np.array([2.0, 4.0, 3.0, 1.0, 0.25])


def _write(tmp_path, text, name="t.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("sep", [" ", "\t", ", ", ",", "   "])
def test_round_trip_separators(tmp_path, sep):
    body = f"# comment line\nE_MeV{sep}flux\n"
    body += "".join(f"{float(e)!r}{sep}{float(y)!r}  # trailing comment\n\n" for e, y in zip(E, Y))
    x, y = read_two_column(_write(tmp_path, body))
    np.testing.assert_array_equal(x, E)  # exact: repr() round-trips float64
    np.testing.assert_array_equal(y, Y)


def test_round_trip_bz2_and_extra_columns(tmp_path):
    p = tmp_path / "t.tsv.bz2"
    with bz2.open(p, "wt") as fh:
        fh.write("E_MeV\tN_density\tsigma\n")
        fh.writelines(f"{float(e)!r}\t{float(y)!r}\t7\n" for e, y in zip(E, Y))
    x, y = read_two_column(p)
    np.testing.assert_array_equal(x, E)
    np.testing.assert_array_equal(y, Y)


def test_flux_values_interpolation_and_support(tmp_path):
    p = _write(tmp_path, "".join(f"{float(e)!r} {float(y)!r}\n" for e, y in zip(E, Y)))
    src = TabulatedFlux.from_file(p, flavour="mu", antineutrino=True, scale=3.0)
    (c,) = src.components()
    assert (c.flavour, c.antineutrino, c.name) == (1, True, "t.txt")
    assert c.breakpoints == tuple(E)  # breakpoints are the table nodes
    np.testing.assert_allclose(c.density(E), 3.0 * Y, rtol=1e-15)  # nodes reproduced (x scale)
    np.testing.assert_allclose(c.density(np.array([0.75, 2.75])), 3.0 * np.array([3.0, 2.0]), rtol=1e-14)  # midpoints
    np.testing.assert_array_equal(c.density(np.array([0.0, 0.4999, 5.0001, 20.0])), 0.0)  # zero outside


def test_linear_integral_equals_trapezoid(tmp_path):
    rng = np.random.default_rng(1)
    e = np.sort(rng.uniform(0.01, 9.0, 40))
    y = rng.uniform(0.0, 5.0, 40)
    p = _write(tmp_path, "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(e, y)))
    src = TabulatedFlux.from_file(p)
    # Gauss-Legendre split at every node integrates a piecewise-linear curve exactly (rounding only).
    assert src.total_flux() == pytest.approx(np.trapezoid(y, e), rel=1e-13)
    assert src.components()[0].total_flux() == pytest.approx(TableInterpolator(e, y).integral(), rel=1e-13)


def test_log_interpolation(tmp_path):
    flux = TabulatedFlux(E, Y, interpolation="log")
    (c,) = flux.components()
    # ln y linear in E: the midpoint value is the geometric mean of the neighbours.
    np.testing.assert_allclose(c.density(np.array([1.5])), np.sqrt(4.0 * 3.0), rtol=1e-14)
    # analytic integral of the exponential pieces vs the 48-point Gauss-Legendre of the component
    # (max_step 0.5 MeV pieces of a smooth exponential: converged far below 1e-12).
    assert c.total_flux() == pytest.approx(flux.interpolator.integral(), rel=1e-12)


def test_sort_option_for_digitised_curves(tmp_path):
    p = _write(tmp_path, "1.0 1\n0.5 2\n1.0 3\n2.0 4\n")
    x, y = read_two_column(p, sort=True)
    np.testing.assert_array_equal(x, [0.5, 1.0, 2.0])
    np.testing.assert_array_equal(y, [2.0, 2.0, 4.0])  # the two rows at 1.0 are averaged


# needles: "{f}" stands for the file's path; every message starts "<file>:<line>:"
BAD = [
    ("one_column", "0.5 1\n1.0\n2.0 3\n", ["{f}:2:", "found 1", "at least 2 columns"]),
    ("ragged", "0.5 1 7\n1.0 2\n", ["{f}:2:", "found 2", "line 1", "same columns"]),
    ("text", "0.5 1\n1.0 abc\n", ["{f}:2:", "'dPhi/dE'", "'abc'", "not a number"]),
    ("text_energy", "0.5 1\n1,0 2\n", ["{f}:2:"]),
    ("nan", "0.5 1\n1.0 nan\n", ["{f}:2:", "'dPhi/dE'", "'nan'", "not finite"]),
    ("negative_flux", "0.5 1\n1.0 -2\n2.0 1\n", ["{f}:2:", "'dPhi/dE'", "-2.0", "negative"]),
    ("negative_energy", "-0.5 1\n1.0 2\n", ["{f}:1:", "'E_MeV'", "-0.5", "negative"]),
    ("unsorted", "0.5 1\n2.0 2\n1.0 3\n", ["{f}:3:", "'E_MeV'", "1.0", "unsorted", "strictly increasing"]),
    ("duplicate", "0.5 1\n1.0 2\n\n1.0 3\n", ["{f}:4:", "'E_MeV'", "1.0", "duplicate", "({f}:2)"]),
    ("empty", "# only a comment\n", ["{f}: no data rows"]),
    ("one_row", "E_MeV flux\n1.0 2\n", ["{f}: has 1 data row", "at least 2 rows"]),
    ("empty_field", "0.5,,1\n1.0,2,3\n", ["{f}:1:", "column 2", "empty"]),
]


@pytest.mark.parametrize("name,text,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_files_raise_with_location(tmp_path, name, text, needles):
    p = _write(tmp_path, text, name=f"{name}.txt")
    with pytest.raises(ValueError) as info:
        TabulatedFlux.from_file(p)
    msg = str(info.value)
    assert msg.startswith(str(p))  # the file is named first
    for needle in needles:
        needle = needle.format(f=p)
        assert needle in msg, (needle, msg)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_two_column(tmp_path / "nope.txt")


def test_bad_arrays_and_options():
    with pytest.raises(ValueError, match="equal length"):
        TabulatedFlux([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="duplicate"):
        TabulatedFlux([1.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="negative"):
        TabulatedFlux([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="interpolation='cubic'"):
        TabulatedFlux(E, Y, interpolation="cubic")
    with pytest.raises(ValueError, match="scale"):
        TabulatedFlux(E, Y, scale=-1.0)
    with pytest.raises(ValueError, match="flavour"):
        TabulatedFlux(E, Y, flavour="sterile")
