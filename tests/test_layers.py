"""The import-linter contract of ``make lint`` names every module of ``ingestion``.

A module that is in no layer is checked by nothing: ``lint-imports`` would let it import
anything, cycles included. This test fails when a new module is added without a layer.
"""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _layered_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split("|")}


def test_every_module_of_ingestion_is_in_a_layer():
    modules = {f"ingestion.{p.stem}" for p in (ROOT / "ingestion").glob("*.py") if p.stem != "__init__"}
    layered = _layered_modules()
    assert modules - layered == set(), "add these modules to [tool.importlinter] layers in pyproject.toml"
    assert layered - modules == set(), "these layers name modules that no longer exist"
