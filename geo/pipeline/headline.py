"""The headline of an exposure run: both views (bands and "at least") from one request.

The CLI's ``exposure`` and ``report`` commands and the Exposure page all call
:func:`exposure_headline` (through :meth:`ExposureRun.headline`), so they show the
same figures. The view the run did not compute is computed here, with the run's
weighting, nationalities and population grid, as class totals only (equal to that
view's ``class_totals()``; the rows of every nationality are not needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from geo.pipeline.exposure import ExposureRun
    from geo.release import Release
    from geo.tools.headline import Headline


def other_view_totals(run: ExposureRun, release: Release) -> pd.DataFrame | None:
    """Return the class totals of the view the run did not compute (None: unordered)."""
    from geo.pipeline.exposure import weighting_inputs
    from geo.tools.exposure import class_totals

    if run.other_classes is None or not run.exposure.ordered:
        return None
    weighting = run.exposure.weighting
    places, grid = weighting_inputs(release, run.other_classes, weighting, run.population)
    return class_totals(
        release,
        run.other_classes,
        weighting=weighting,
        nationalities=list(run.nationalities) if run.nationalities else None,
        places=places,
        population=grid,
        confidence=run.exposure.confidence if run.exposure.accuracy.method == "noise" else 0.99,
    )


def exposure_headline(run: ExposureRun, release: Release) -> Headline:
    """Return the run's headline (see :mod:`geo.tools.headline`), every figure released."""
    from geo.tools.headline import build_headline

    mine, other = run.exposure.class_totals(), other_view_totals(run, release)
    banded, cumulative = (other, mine) if run.exposure.cumulative else (mine, other)
    return build_headline(
        banded,
        cumulative,
        run.exposure.accuracy,
        release.metadata,
        run.provenance,
        run.nationalities,
    )
