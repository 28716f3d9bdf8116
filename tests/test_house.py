"""The library's house rules: light imports, arrows that point down, modules of one job.

Imports are checked transitively in a fresh interpreter (what ``sys.modules`` holds after
the import), not by reading import lines: a page that reaches the store through another
module is caught too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "geo"
HEAVY = ("duckdb", "scipy", "geopandas", "streamlit")


def loaded_after(code: str, env: dict | None = None) -> set[str]:
    """Return the top-level modules loaded after running ``code`` in a fresh interpreter."""
    report = "sorted({m.split('.')[0] for m in sys.modules} | set(sys.modules))"
    script = f"{code}\nimport json, sys\nprint(json.dumps({report}))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_the_cli_and_its_help_load_nothing_heavy():
    loaded = loaded_after(
        "import contextlib, io, geo.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    geo.cli.main(['--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    geo.cli.main(['ingest', '--help'])\n"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_importing_geo_and_the_pipeline_is_light():
    loaded = loaded_after("import geo, geo.pipeline, geo.errors, geo.codes")
    assert not loaded & {*HEAVY, "pandas", "polars"}, loaded & {*HEAVY, "pandas", "polars"}


def test_no_geo_module_loads_streamlit_or_the_cli():
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in GEO.rglob("*.py")
        if path.name != "cli.py"
    )
    loaded = loaded_after("import " + ", ".join(modules))
    assert "streamlit" not in loaded and "geo.cli" not in loaded and "app_pages" not in loaded


def test_the_dashboard_on_a_vector_footprint_loads_no_raster_or_chart_library():
    # rasterio (GDAL) loads only to read a raster, Altair never: together about 45 MiB
    # of the server's memory after an exposure (measured on the demo: 397 -> 351 MiB).
    loaded = loaded_after(
        "import os\n"
        "os.environ.update(CRISIS_EXPOSURE_RELEASE_DIR='data/demo', CRISIS_EXPOSURE_STEWARD='0')\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('dashboard.py', default_timeout=120).run()\n"
        "at.switch_page('app_pages/exposure.py').run()\n"
        "assert not at.exception, at.exception\n"
        "assert at.get('vega_lite_chart') and at.get('component_instance')\n"
    )
    assert not loaded & {"rasterio", "altair"}, loaded & {"rasterio", "altair"}


def imported_geo_modules(path: Path) -> set[str]:
    """Return the ``geo`` modules a file imports (module level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("geo"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("geo")}
    return found


def test_io_and_tools_never_import_each_other_nor_the_pipeline():
    for package, forbidden in (("io", "geo.tools"), ("tools", "geo.io")):
        for path in (GEO / package).rglob("*.py"):
            imported = imported_geo_modules(path)
            bad = {m for m in imported if m.startswith((forbidden, "geo.pipeline", "geo.cli"))}
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_core_imports_neither_io_tools_nor_pipeline():
    core = [p for p in GEO.glob("*.py") if p.name not in ("pipeline.py", "cli.py", "__init__.py")]
    core += list((GEO / "audit").rglob("*.py")) + list((GEO / "viz").rglob("*.py"))
    for path in core:
        bad = {
            m
            for m in imported_geo_modules(path)
            if m.startswith(("geo.io", "geo.tools", "geo.pipeline", "geo.cli"))
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_pages_reach_the_library_only_through_the_pipeline_and_public_modules():
    for path in [ROOT / "dashboard.py", *sorted((ROOT / "app_pages").glob("*.py"))]:
        bad = {
            m
            for m in imported_geo_modules(path)
            if m.startswith(("geo.io", "geo.tools", "geo.cli"))
        }
        assert not bad, f"{path.name} imports {bad}"


def test_no_module_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in [*GEO.rglob("*.py"), *(ROOT / "demo").rglob("*.py")]
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long


@pytest.mark.slow
def test_only_the_data_page_loads_the_store(tmp_path):
    """Map, Exposure and Release pages, run for real, never load duckdb or the store."""
    from geo.pipeline import write_release
    from geo.release import ReleasePolicy, protect
    from tests.factories import clustered_records

    write_release(
        protect(clustered_records(3000, seed=5), ReleasePolicy()), tmp_path / "a.release.parquet"
    )
    env = {
        **__import__("os").environ,
        "CRISIS_EXPOSURE_RELEASE_DIR": str(tmp_path),
        "CRISIS_EXPOSURE_STEWARD": "0",
    }
    loaded = loaded_after(
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('dashboard.py', default_timeout=120).run()\n"
        "at.switch_page('app_pages/exposure.py').run()\n"
        "assert at.metric, 'no exposure headline'\n"
        "at.switch_page('app_pages/release.py').run()\n"
        "assert not at.exception, at.exception\n",
        env=env,
    )
    assert not loaded & {"duckdb", "geo.io.store", "geo.io.registrations"}


def test_the_dashboard_listens_on_this_machine_only_with_xsrf_and_no_error_details():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] <= 100
    assert config["client"]["showErrorDetails"] == "none"


def test_the_map_bundle_is_built_from_the_committed_source():
    # The dashboard serves the committed bundle (no Node.js needed to run it); its first
    # line names the source and lockfile it was built from.
    frontend = ROOT / "app_pages" / "deck_map" / "frontend"

    def sha256(name: str) -> str:
        return hashlib.sha256((frontend / name).read_bytes()).hexdigest()

    with open(frontend / "dist" / "main.js", encoding="utf-8") as bundle:
        banner = bundle.readline().rstrip("\n")
    built_from = (
        f"// built from src/main.js {sha256('src/main.js')} "
        f"package-lock.json {sha256('package-lock.json')}"
    )
    assert banner == built_from, (
        "rebuild it: cd app_pages/deck_map/frontend && npm ci && npm run build"
    )
    licences = (frontend / "dist" / "THIRD_PARTY_LICENSES.txt").read_text(encoding="utf-8")
    assert "@deck.gl/core" in licences and "h3-js" in licences
