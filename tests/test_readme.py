"""The README stays true: every config key and every command is documented."""

import re
from pathlib import Path

from spillover import config
from spillover.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_config_table_matches_the_code():
    table = README.split("<!-- config-table:start -->")[1].split("<!-- config-table:end -->")[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (`[^`]*`|—) \|", table, re.M)
    documented = {name: default.strip("`") for name, default in rows}
    assert documented == {k.name: (k.default or "—") for k in config.KEYS}


def test_every_command_is_documented():
    import argparse

    parser = build_parser(argparse)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in commands:
        assert f"`spillover {name}" in README or f"`{name}`" in README, name


def test_every_check_exit_code_is_documented():
    for code in (0, 1, 2, 3, 4, 5):
        assert re.search(rf"^\| {code} \|", README, re.M)
