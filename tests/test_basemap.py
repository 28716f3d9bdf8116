"""The shipped offline base map: every country, real ISO codes, a bounds filter."""

from geo.io.basemap import country_outlines


def test_basemap_has_every_country_with_codes_natural_earth_left_out():
    countries = country_outlines()
    assert len(countries) == 177
    codes = dict(zip(countries["name"], countries["iso_a3"], strict=True))
    assert codes["France"] == "FRA" and codes["Norway"] == "NOR" and codes["Kosovo"] == "XKX"
    assert "-99" not in set(countries["iso_a3"])


def test_basemap_bounds_keep_the_countries_around_central_italy():
    names = set(country_outlines((12.0, 41.5, 14.5, 43.5))["name"])
    assert names == {"Italy"}
