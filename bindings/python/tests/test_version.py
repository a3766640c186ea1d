"""The wheel imports and reports the workspace version from Cargo.toml."""

import pathlib
import tomllib

import journalkeeper

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_version_matches_cargo_toml() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert journalkeeper.version() == cargo["workspace"]["package"]["version"]
    assert journalkeeper.__version__ == journalkeeper.version()
