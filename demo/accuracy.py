"""How close the exposure estimate comes to the truth, on a registry whose truth is known.

Used to choose the default within-cell weighting and to check the bounds: only the
demo's SYNTHETIC truth (exact coordinates) makes this possible. The truth compared is
that of the released records (records dropped under k are in no estimate). It lives
with the demo, not in the library, because it needs that SYNTHETIC registry
(``benchmarks/exposure_accuracy.py`` and ``tests/test_exposure.py`` use it).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import polars as pl
import polars_h3

from demo.registry import generate_demo_registry
from geo.exposure_table import WEIGHTINGS
from geo.io.store import STORE_RESOLUTION
from geo.pipeline import compute_exposure
from geo.release import Release, ReleasePolicy, protect
from geo.rollup import merge_rare_nationalities


def points_to_records(points: pd.DataFrame) -> pl.DataFrame:
    """Return release input records from truth points (nationality, latitude, longitude, persons).

    Sex, age band and vulnerabilities are not needed for exposure and are left unknown.
    """
    frame = pl.from_pandas(points[["nationality", "latitude", "longitude", "persons"]])
    return frame.with_columns(
        polars_h3.latlng_to_cell("latitude", "longitude", STORE_RESOLUTION).alias("cell"),
        pl.lit("unknown").alias("sex"),
        pl.lit("unknown").alias("age_band"),
        pl.lit(0, dtype=pl.UInt16).alias("vulnerabilities"),
        pl.col("persons").cast(pl.Int64),
    )


def released_points(points: pd.DataFrame, release: Release) -> pd.DataFrame:
    """Return the truth points whose record the release covers, with the released nationality.

    A record is covered when one of its cell's ancestors, from the base resolution to
    the floor, holds a published group of its (possibly ``OTH``) nationality: a
    published residual takes every record still pending beneath it.
    """
    policy = release.policy
    records = merge_rare_nationalities(points_to_records(points), policy.k)
    published = pl.from_pandas(release.groups[["h3_cell", "nationality"]]).with_columns(
        pl.lit(True).alias("published")
    )
    covered = pl.lit(False)
    for res in range(policy.base_resolution, policy.floor_resolution - 1, -1):
        name = f"published_{res}"
        records = records.with_columns(
            polars_h3.int_to_str(polars_h3.cell_to_parent("cell", res)).alias("h3_cell")
        ).join(published.rename({"published": name}), on=["h3_cell", "nationality"], how="left")
        covered = covered | pl.col(name).fill_null(False)
    mask = records.select(covered).to_series().to_numpy()
    out = points.loc[mask].copy()
    out["nationality"] = records["nationality"].to_numpy()[mask]
    return out.reset_index(drop=True)


def truth_by_class(points: pd.DataFrame, classes: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return exact persons and cases per class × nationality by point in polygon."""
    located = gpd.GeoDataFrame(
        points, geometry=gpd.points_from_xy(points["longitude"], points["latitude"]), crs=4326
    )
    joined = gpd.sjoin(located, classes[["class_label", "geometry"]], predicate="within")
    return (
        joined.groupby(["class_label", "nationality"])
        .agg(persons_true=("persons", "sum"), cases_true=("persons", "size"))
        .reset_index()
        .rename(columns={"class_label": "hazard_class"})
    )


def compare_with_truth(
    points: pd.DataFrame,
    classes: gpd.GeoDataFrame,
    policy: ReleasePolicy,
    weightings: tuple[str, ...] = WEIGHTINGS,
    population: str | Path | None = None,
) -> pd.DataFrame:
    """Return one row per class × nationality × weighting: bounds, estimate and truth.

    Parameters
    ----------
    points
        The truth: nationality, latitude, longitude, persons per registration.
    classes
        Disjoint hazard classes.
    policy
        The release policy to protect the points with.
    weightings
        The estimate weightings to compare (``population`` only with a grid).
    population
        The population grid file for the population weighting.
    """
    release = protect(points_to_records(points), policy)
    truth = truth_by_class(released_points(points, release), classes)
    rows = []
    for weighting in weightings:
        if weighting == "population" and population is None:
            continue
        table = compute_exposure(
            release, classes, weighting=weighting, population=population
        ).by_class
        merged = table.merge(truth, on=["hazard_class", "nationality"], how="outer").fillna(0)
        merged["weighting"] = weighting
        rows.append(merged)
    result = pd.concat(rows, ignore_index=True)
    result["error"] = result["persons_estimate"] - result["persons_true"]
    with np.errstate(divide="ignore", invalid="ignore"):
        result["relative_error"] = result["error"] / result["persons_true"]
    return result


def summarise_errors(comparison: pd.DataFrame, min_persons: int = 100) -> pd.DataFrame:
    """Return per weighting: groups compared, median and worst |relative error|, bound misses.

    Only class × nationality rows with at least ``min_persons`` true persons count for
    the errors; the bound check counts every row.
    """
    outside = (comparison["persons_true"] < comparison["persons_low"]) | (
        comparison["persons_true"] > comparison["persons_high"]
    )
    big = comparison[comparison["persons_true"] >= min_persons]
    summary = big.groupby("weighting")["relative_error"].agg(
        groups="size",
        median_abs_error=lambda e: float(np.median(np.abs(e))),
        worst_abs_error=lambda e: float(np.max(np.abs(e))),
    )
    summary["outside_bounds"] = outside.groupby(comparison["weighting"]).sum()
    return summary.reset_index()


def demo_truth_points(scale: float, seed: int = 2016) -> pd.DataFrame:
    """Return the SYNTHETIC demo registry's good records as truth points with placement."""
    frame = generate_demo_registry(seed=seed, scale=scale)
    good = frame[frame["expected_problem"].isna()]
    return pd.DataFrame(
        {
            "nationality": good["nationality_iso3"].to_numpy(),
            "latitude": good["true_latitude"].to_numpy(),
            "longitude": good["true_longitude"].to_numpy(),
            "persons": 1 + good["true_family_members"].astype(int).to_numpy(),
            "placement": good["placement"].to_numpy(),
        }
    )
