"""Release page: the active release's policy, totals and method, in plain words."""

import pandas as pd
import streamlit as st

from app_pages import common
from geo.accuracy import Accuracy
from geo.series import series_display
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
    f"**{common.plain(release_file.name)}**, created {metadata['created_at']}, method "
    f"{metadata['method_version']}, content sha256 `{metadata.get('content_sha256', '')}`. "
    "Switch releases in the sidebar."
)
verification = release.verification
said = verification.sentence() if verification is not None else ""
said = said[:1].upper() + said[1:]  # keep the fingerprint's case
if verification is not None and verification.status == "verified":
    st.success(said + ".", icon=":material/verified:")
elif verification is not None:
    st.warning(
        said + ". Set CRISIS_EXPOSURE_TRUSTED_KEYS to the steward's public key file to verify it.",
        icon=":material/gpp_maybe:",
    )
standing = common.release_standing(release, release_file)
if standing is not None:
    lines = [f"- {line[:1].upper()}{line[1:]}." for line in standing.notes]
    if metadata.get("supersedes"):
        lines.append(
            f"- Replaces the earlier release with content sha256 `{metadata['supersedes']}`."
        )
    if not config.revocations:
        lines.append(
            "- No revocation list is set (CRISIS_EXPOSURE_REVOCATIONS): a release the "
            "steward withdrew would not be shown as withdrawn here."
        )
    st.markdown("\n".join(lines))
totals = st.columns(4)
totals[0].metric("Persons published", f"{published['persons']:,}")
totals[1].metric("Cases published", f"{published['cases']:,}")
totals[2].metric("Groups published", f"{published['groups']:,}")
totals[3].metric(
    "Persons withheld",
    f"{dropped['persons']:,}",
    help=f"Persons of the groups still under k cases at the floor resolution "
    f"{policy['floor_resolution']}: counted only in this total.",
)

accuracy = Accuracy.of(metadata)
noisy = accuracy.method == "noise"
method_label = (
    f"random noise (method 2), scale {accuracy.noise_scale:.3g} for cases, "
    f"{accuracy.scale('persons'):.3g} for persons"
    if noisy
    else "exact counts (method 1)"
)

st.subheader("Policy")
nationalities = policy["nationalities"]
# A static table wraps long values (a data grid clips them at a phone's width).
st.table(
    pd.DataFrame(
        [
            ("Threshold k (cases per published count)", policy["k"]),
            ("Base H3 resolution", policy["base_resolution"]),
            ("Floor H3 resolution (coarsest roll-up)", policy["floor_resolution"]),
            ("Audience nationalities", ", ".join(nationalities) if nationalities else "all"),
            (
                ("Legal basis", f"other than consent: {policy.get('basis_note')}")
                if policy.get("legal_basis") == "other"
                else ("Consent scope required", policy["consent_scope"])
            ),
            (
                "Believed true on",
                f"{policy['as_of']}"
                + (
                    f", confirmed within {policy['confirmed_within']} days"
                    if policy.get("confirmed_within")
                    else ""
                )
                if policy.get("as_of")
                else "not filtered",
            ),
            ("Rounded to a multiple of", policy["round_to"] or "not rounded"),
            ("Protection method", method_label),
        ],
        columns=["setting", "value"],
    )
    .astype(str)
    .set_index("setting"),
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
st.table(by_resolution.set_index("H3 resolution"))
breakdowns = published["breakdown_groups"]
rolled_up = published["groups"] - published["groups_by_resolution"].get(str(base), 0)
floor_km2 = cell_area_km2(policy["floor_resolution"])
st.markdown(
    f"- **Rolled up:** {rolled_up:,} "
    f"of {published['groups']:,} groups are published at a coarser cell than resolution {base}.\n"
    f"- **Withheld:** {dropped['cases']:,} cases ({dropped['persons']:,} persons) were still "
    f"under k at resolution {policy['floor_resolution']} and appear only in this total"
    + (" (itself a noisy figure).\n" if noisy else ".\n")
    + f"- **Breakdowns published:** sex for {breakdowns.get('sex', 0):,} groups, age band for "
    f"{breakdowns.get('age_band', 0):,}, vulnerability for {breakdowns.get('vulnerability', 0):,} "
    + ("floor cells." if noisy else "floor cells; for the others they are not available.")
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
if noisy:
    breakdown_rule = f"""4. Every count carries random noise: each group's cases and persons, every
   category of its sex and age-band breakdowns, every vulnerability category of a floor
   cell, and the withheld total. The noise is a whole number drawn around zero (scale
   {accuracy.noise_scale:.3g} for cases, {accuracy.scale("persons"):.3g} for persons),
   so that no small group can be recovered by subtracting one figure from another, in
   this release or across releases. It is tied to the records behind each figure: the
   same records always show the same value. A count never shows less than k, a
   category never less than 0, so small categories may show 0 or a little more than
   they hold, and categories need not add up to their group's total.
5. Breakdowns are published for every group, complete: nothing is withheld, so a
   missing breakdown can reveal nothing.
6. **Accuracy:** {accuracy.figure_sentence()} A sum of many counts is off by much less
   than the sum of their margins: the exposure tables widen their low and high by
   exactly what the noise can move in the counts they add up."""
else:
    breakdown_rule = f"""4. Sex and age-band breakdowns are published for a group only when every
   category it has counts at least k cases; otherwise the breakdown is "not available".
5. **Accuracy:** {accuracy.figure_sentence()}"""
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
   What is still under k there is withheld and counted only in the total above.
3. Nationalities with fewer than k cases in the whole release appear as "Other".
{breakdown_rule}
{7 if noisy else 6}. Every figure in this dashboard and its downloads is a released value or
   a sum of released values: totals, maps and exposure tables never go back to the records.
"""
)

with st.expander("Summary as the command line prints it"):
    st.code("\n".join(release.summary_lines()), language=None, wrap_lines=True)
st.subheader("Releases available here, as series")
st.caption(
    "Releases of one audience ordered by the store version they were made at; changes "
    "are differences of published figures only. The active release is marked ▶."
)
st.dataframe(
    series_display(common.release_series(config, release_file)),
    hide_index=True,
    width="stretch",
)
