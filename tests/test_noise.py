"""Method 2: keyed noise on every published figure, the same structure as method 1."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from geo import pipeline
from geo.noise import figure_noise, noise_bound
from geo.release import ReleasePolicy, protect
from geo.rollup import BREAKDOWN_DIMENSIONS
from tests.factories import clustered_records, registration_row

K = 10


@pytest.fixture(scope="module")
def records():
    return clustered_records(20_000, seed=11)


@pytest.fixture(scope="module")
def noisy(records):
    return protect(records, ReleasePolicy(), secret=7)


def test_the_structure_is_method_one_and_only_the_values_move(records, noisy):
    exact = protect(records, ReleasePolicy(noise_scale=0))
    keys = ["h3_cell", "resolution", "nationality"]
    assert noisy.groups[keys].equals(exact.groups[keys])  # the same groups, the same cells
    assert (noisy.groups["cases"] != exact.groups["cases"]).mean() > 0.5
    assert noisy.metadata["method"] == "noise" and noisy.metadata["method_version"] == "2.0"
    assert noisy.metadata["policy"]["noise_scale"] == pytest.approx(K / 3)
    assert "audience" not in noisy.metadata  # no exact total of the audience


def test_every_category_of_every_group_is_published_so_nothing_is_withheld(noisy):
    rows = noisy.breakdowns
    for dimension in ("sex", "age_band"):
        per_group = rows[rows["dimension"] == dimension].groupby(["h3_cell", "nationality"]).size()
        assert len(per_group) == len(noisy.groups)
        assert (per_group == len(BREAKDOWN_DIMENSIONS[dimension])).all()
    vulnerability = rows[rows["dimension"] == "vulnerability"]
    assert (vulnerability.groupby(["h3_cell", "nationality"]).size() == 7).all()
    assert (vulnerability["resolution"] == 4).all()  # sensitive categories only at the floor


def test_published_values_keep_the_declared_invariants(noisy):
    assert (noisy.groups["cases"] >= K).all() and (noisy.groups["persons"] >= K).all()
    assert (noisy.breakdowns["cases"] >= 0).all()
    for frame in (noisy.groups, noisy.breakdowns):
        assert (frame["persons"] >= frame["cases"]).all()


def test_the_same_records_give_the_same_release_and_a_change_moves_only_its_figures(records):
    policy = ReleasePolicy()
    first, again = protect(records, policy, secret=3), protect(records, policy, secret=3)
    assert first.table().equals(again.table())
    assert not protect(records, policy, secret=4).table().equals(first.table())
    # one registration more in one base cell: only the figures that count it change
    one = records.head(1)
    changed = protect(pl.concat([records, one]), policy, secret=3).table()
    before = first.table()
    merged = before.merge(changed, on=list(before.columns[:5]), suffixes=("", "_after"))
    moved = merged[
        (merged["cases"] != merged["cases_after"]) | (merged["persons"] != merged["persons_after"])
    ]
    assert 1 <= moved["h3_cell"].nunique() <= 2  # its group (and its floor cell's rows)
    assert len(moved) <= 1 + 2 + 1  # total, its sex, its age band, its vulnerability


def test_noise_is_centred_and_within_its_stated_accuracy():
    n = 200_000
    rng = np.random.default_rng(0)
    noise = figure_noise(
        rng.integers(0, 2**62, n, dtype=np.uint64),
        np.array(["ROU"] * n),
        "cases",
        rng.integers(0, 2**32, n, dtype=np.uint64),
        K / 3,
        secret=1,
    )
    assert abs(noise.mean()) < 0.05
    p = np.exp(-3 / K)
    assert noise.std() == pytest.approx(np.sqrt(2 * p) / (1 - p), rel=0.02)
    # the stated 99 % holds (the sampled share, within three standard errors)
    assert (np.abs(noise) > noise_bound(1, K / 3)).mean() <= 0.01 + 3 * np.sqrt(0.01 / n)
    sums = noise[: 100 * 2000].reshape(2000, 100).sum(axis=1)
    assert (np.abs(sums) > noise_bound(100, K / 3)).mean() <= 0.01 + 3 * np.sqrt(0.01 / 2000)
    # and it is the exact quantile, not a loose bound: one less would miss it
    assert (np.abs(noise) > noise_bound(1, K / 3) - 1).mean() > 0.01


@pytest.mark.parametrize("scale", [0.5, 10 / 3, 20 / 3])
@pytest.mark.parametrize("figures", [1, 2, 7, 40, 300])
def test_the_noise_bound_is_the_quantile_of_the_summed_distribution(figures, scale):
    # The figures' distribution convolved with itself, directly (truncated where each
    # figure's tail is below 1e-30): the bound is the smallest B it puts ≤ 0.5 % above.
    p = np.exp(-1 / scale)
    reach = int(np.ceil(30 * np.log(10) * scale))
    single = (1 - p) / (1 + p) * p ** np.abs(np.arange(-reach, reach + 1))
    total = np.ones(1)
    for _ in range(figures):
        total = np.convolve(total, single)
    above = np.cumsum(total[::-1])[::-1]  # P(sum ≥ index − figures·reach)
    bound = int(np.flatnonzero(above <= 0.005 - 1e-9)[0]) - figures * reach - 1
    assert noise_bound(figures, scale) == bound


def test_the_bounds_of_a_national_exposure_take_a_second_not_minutes():
    # A hundred sum sizes up to the exact limit at the persons' scale of k = 10: 4.5 s
    # of CPU (imports included), 34 s with an FFT of each sum's distribution (16 s of a
    # dashboard's first exposure at 10M registrations).
    import subprocess
    import sys

    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (15, 15))\n"
        "from geo.noise import noise_bound\n"
        "print(sum(noise_bound(n, 20 / 3) for n in range(1, 4097, 41)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:] or "over 15 s of CPU"
    assert int(done.stdout) > 0


def test_the_store_gives_the_same_release_twice_and_a_fresh_one_after_a_change(tmp_path, write_csv):
    rows = [registration_row(f"r{i}") for i in range(30)]
    store = tmp_path / "s.duckdb"
    pipeline.ingest_files(store, [write_csv(rows, "a.csv")])
    first = pipeline.publish_release(store, ReleasePolicy(), tmp_path / "1.release.parquet")
    again = pipeline.publish_release(store, ReleasePolicy(), tmp_path / "2.release.parquet")
    assert first.metadata["content_sha256"] == again.metadata["content_sha256"]
    pipeline.ingest_files(store, [write_csv([registration_row("new")], "b.csv")])
    later = pipeline.publish_release(store, ReleasePolicy(), tmp_path / "3.release.parquet")
    assert later.metadata["content_sha256"] != first.metadata["content_sha256"]


def test_figure_labels_are_coded_by_their_utf8_bytes_each_distinct_text_once():
    """The codes fold the UTF-8 bytes (FNV-1a's prime over the store's fixed basis).

    Fixed since the first noisy release: a change would give every figure of every
    release fresh noise. Checked against a byte-by-byte fold, over many rows.
    """
    import numpy as np

    from geo.noise import text_code

    def folded(text: str) -> int:
        code = 1469598103934665603
        for byte in text.encode():
            code = ((code ^ byte) * 1099511628211) % 2**64
        return code

    texts = ["", "a", "foobar", "ITA|sex|é", None]
    labels = np.array(texts * 60_000, dtype=object)
    codes = text_code(labels)
    assert codes[:5].tolist() == [folded(str(text)) for text in texts]
    assert codes[1] == 4953267810257967366
    assert len(codes) == 300_000 and (codes[5:] == np.tile(codes[:5], 59_999)).all()
