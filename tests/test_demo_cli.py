"""``python -m demo``: help, one-line errors, and the library never importing the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from demo.__main__ import build_parser, main

GEO = Path(__file__).resolve().parent.parent / "geo"


@pytest.mark.parametrize("command", ["build", "registry"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m demo " + command in capsys.readouterr().out


def test_registry_writes_the_files(tmp_path, capsys):
    assert main(["registry", "--out", str(tmp_path), "--seed", "3", "--scale", "0.002"]) == 0
    out = capsys.readouterr().out
    assert out.count("written ") == 4 and "SYNTHETIC_truth.parquet" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["registry", "--out", "{dir}", "--scale", "0"], "--scale must be positive"),
        (["registry", "--out", "{file}", "--scale", "0.002"], "File exists"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    file = tmp_path / "a_file"
    file.write_text("x")
    code = main([a.format(dir=tmp_path / "out", file=file) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("python -m demo registry: error: ") and message in err[-1]


def test_geo_never_imports_demo():
    for path in GEO.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "demo" or n.startswith("demo.") for n in names), path
