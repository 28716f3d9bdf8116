"""Release page: the active release's policy, totals and method, in plain words."""

import pandas as pd
import streamlit as st

from app_pages import common
from geo.viz.cells import cell_area_km2, nationality_label

st.title("The active release")
config = common.settings()
loaded = common.active_release()
if loaded is None:
    st.stop()
release, release_file = loaded
metadata = release.metadata
policy, published, dropped = metadata["policy"], metadata["published"], metadata["dropped"]

st.markdown(
    f"**{release_file.name}**, created {metadata['created_at']}, method "
    f"{metadata['method_version']}, content sha256 `{metadata.get('content_sha256', '')}`. "
    "Switch releases in the sidebar."
)
totals = st.columns(4)
totals[0].metric("Persons published", f"{published['persons']:,}")
totals[1].metric("Cases published", f"{published['cases']:,}")
totals[2].metric("Groups published", f"{published['groups']:,}")
totals[3].metric("Persons dropped (under k at the floor)", f"{dropped['persons']:,}")

st.subheader("Policy")
nationalities = policy["nationalities"]
st.dataframe(
    pd.DataFrame(
        [
            ("Threshold k (cases per published count)", policy["k"]),
            ("Base H3 resolution", policy["base_resolution"]),
            ("Floor H3 resolution (coarsest roll-up)", policy["floor_resolution"]),
            ("Audience nationalities", ", ".join(nationalities) if nationalities else "all"),
            ("Consent scope required", policy["consent_scope"]),
            ("Rounded to a multiple of", policy["round_to"] or "not rounded"),
        ],
        columns=["setting", "value"],
    ).astype(str),
    hide_index=True,
    width="stretch",
)

st.subheader("What was published, rolled up and dropped")
base = policy["base_resolution"]
by_resolution = pd.DataFrame(
    [
        {
            "H3 resolution": int(r),
            "groups": int(n),
            "what they are": "published at the base resolution"
            if int(r) == base
            else "rolled up: groups under k in every finer cell",
        }
        for r, n in sorted(published["groups_by_resolution"].items(), key=lambda x: -int(x[0]))
    ]
)
st.dataframe(by_resolution, hide_index=True, width="stretch")
breakdowns = published["breakdown_groups"]
rolled_up = published["groups"] - published["groups_by_resolution"].get(str(base), 0)
floor_km2 = cell_area_km2(policy["floor_resolution"])
st.markdown(
    f"- **Rolled up:** {rolled_up:,} "
    f"of {published['groups']:,} groups are published at a coarser cell than resolution {base}.\n"
    f"- **Dropped:** {dropped['cases']:,} cases ({dropped['persons']:,} persons) were still "
    f"under k at resolution {policy['floor_resolution']} and appear only in this total.\n"
    f"- **Breakdowns published:** sex for {breakdowns.get('sex', 0):,} groups, age band for "
    f"{breakdowns.get('age_band', 0):,}, vulnerability for {breakdowns.get('vulnerability', 0):,} "
    "floor cells; for the others they are not available."
)

st.subheader("By nationality")
per_nationality = (
    release.groups.groupby("nationality", as_index=False)[["persons", "cases"]]
    .sum()
    .sort_values("persons", ascending=False)
)
per_nationality.insert(0, "name", per_nationality["nationality"].map(nationality_label))
st.dataframe(
    per_nationality.drop(columns="nationality").rename(
        columns={"persons": "persons (sum of released)", "cases": "cases (sum of released)"}
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("The method in plain words")
st.markdown(
    f"""
Registrations were counted per hexagon of the H3 grid (resolution {base}, cells of about
{cell_area_km2(base):,.1f} km²) and per nationality. The privacy unit is the
registration (a *case*): a family of six is one case and six persons.

1. A count is published only if it covers at least **k = {policy["k"]}** cases.
2. Smaller groups are not thrown away: they join the other small groups of the same
   nationality in the parent hexagon (7 times larger), and so on up to resolution
   {policy["floor_resolution"]} (about {floor_km2:,.0f} km²).
   A rolled-up count is published only where it cannot be pinned to one smaller cell.
   What is still under k there is dropped and counted only in the total above.
3. Nationalities with fewer than k cases in the whole release appear as "Other".
4. Sex and age-band breakdowns are published for a group only when every category it
   has counts at least k cases; otherwise the breakdown is "not available".
5. Every figure in this dashboard and its downloads is a released value or a sum of
   released values: totals, maps and exposure tables never go back to the records.
"""
)

with st.expander("Summary as the command line prints it"):
    st.code("\n".join(release.summary_lines()), language=None, wrap_lines=True)
st.subheader("Releases available here")
rows = []
for file in common.release_files(config):
    other = common.guarded("reading a release", common.load_release, file.sha256, file.path)
    if other is not None:
        rows.append(
            {
                "file": file.name,
                "created": other.metadata["created_at"],
                "k": other.k,
                "nationalities": ", ".join(other.metadata["policy"]["nationalities"] or ["all"]),
                "persons published": other.metadata["published"]["persons"],
            }
        )
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
