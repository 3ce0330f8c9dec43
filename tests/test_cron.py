"""`spillover install|uninstall cron` with the real `crontab` command.

`crontab` edits the real user's crontab whatever HOME says, so the `real_crontab` fixture saves it
first and restores it in its teardown whatever happens (removing it when there was none), holding
a lock so that two test runs never interleave.
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spillover import install

LOCK = "/tmp/spillover-tests-crontab.lock"
SPILLOVER = os.path.join(os.path.dirname(sys.executable), "spillover")  # the console script of this venv
FOREIGN = ["MAILTO=\"\"", "# my own job, hands off", "17 5 * * 1 /usr/bin/true --weekly # mine"]

pytestmark = pytest.mark.skipif(shutil.which("crontab") is None, reason="the cron package is not installed (.ci/run installs it)")


def crontab_l():
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    if proc.returncode != 0:
        assert "no crontab" in proc.stderr.lower(), proc.stderr
        return None
    return proc.stdout


def crontab_set(text):
    if text is None:
        subprocess.run(["crontab", "-r"], capture_output=True, text=True)
    else:
        subprocess.run(["crontab", "-"], input=text, text=True, check=True, capture_output=True)


@pytest.fixture
def real_crontab():
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = crontab_l()
        if saved is not None:
            # If this run is killed before the teardown, the user's crontab is still on disk.
            backup = Path(tempfile.gettempdir()) / f"spillover-tests-crontab-backup-{os.getuid()}"
            backup.write_text(saved)
            print(f"your crontab is saved in {backup} while the cron tests run")
        try:
            crontab_set(None)
            yield
        finally:
            crontab_set(saved)
            assert crontab_l() == saved


def ours(text):
    return [line for line in (text or "").splitlines() if install.CRON_MARKER in line]


def test_install_twice_one_line_foreign_lines_survive_uninstall_removes_ours(sandbox, real_crontab):
    crontab_set("\n".join(FOREIGN) + "\n")
    first = sandbox.run("install", "cron")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("cron: added")
    second = sandbox.run("install", "cron")
    assert second.returncode == 0 and "unchanged" in second.stdout
    text = crontab_l()
    assert len(ours(text)) == 1
    assert [line for line in text.splitlines() if install.CRON_MARKER not in line] == FOREIGN

    gone = sandbox.run("uninstall", "cron")
    assert gone.returncode == 0 and "removed" in gone.stdout, gone.stderr
    assert crontab_l() == "\n".join(FOREIGN) + "\n"
    again = sandbox.run("uninstall", "cron")
    assert again.returncode == 0 and "nothing to remove" in again.stdout
    assert crontab_l() == "\n".join(FOREIGN) + "\n"


def test_uninstall_of_the_only_line_leaves_no_crontab(sandbox, real_crontab):
    assert sandbox.run("install", "cron").returncode == 0
    assert sandbox.run("uninstall", "cron").returncode == 0
    assert crontab_l() is None


def test_dry_run_changes_nothing(sandbox, real_crontab):
    crontab_set("\n".join(FOREIGN) + "\n")
    proc = sandbox.run("install", "cron", "--dry-run")
    assert proc.returncode == 0 and proc.stdout.startswith("cron: would add to your crontab: * * * * * ")
    assert crontab_l() == "\n".join(FOREIGN) + "\n"
    assert not sandbox.state_dir.exists()


def test_a_line_of_an_earlier_version_is_replaced_in_place(sandbox, real_crontab):
    old = "* * * * * '/old/venv/bin/python' -m spillover tick >>'/old/tick.log' 2>&1 " + install.CRON_MARKER
    crontab_set("\n".join([FOREIGN[0], old, FOREIGN[2]]) + "\n")
    proc = sandbox.run("install", "cron")
    assert proc.returncode == 0 and "updated" in proc.stdout
    lines = crontab_l().splitlines()
    assert lines[0] == FOREIGN[0] and lines[2] == FOREIGN[2]
    assert "/old/venv" not in lines[1] and "-m spillover" not in lines[1]
    assert f"'{SPILLOVER}' tick >>" in lines[1]


def test_the_line_works_in_crons_bare_environment(wired, real_crontab):
    """Run the installed line's command the way cron does: `sh -c`, empty environment, % unescaped."""
    assert wired.run("install", "cron").returncode == 0
    line = ours(crontab_l())[0]
    fields = line.split(None, 5)
    assert fields[:5] == ["*"] * 5
    command = fields[5].replace("\\%", "%")
    assert f"'{SPILLOVER}' tick" in command
    assert f"SPILLOVER_STATE_DIR='{wired.state_dir}'" in command
    assert f"SPILLOVER_CONFIG='{wired.config_file}'" in command
    assert f"CLAUDE_CONFIG_DIR='{wired.claude_dir}'" in command
    assert command.endswith(f">>'{wired.state_dir}/tick.log' 2>&1 {install.CRON_MARKER}")
    proc = subprocess.run(["/bin/sh", "-c", command], env={"PATH": "/usr/bin:/bin"}, cwd="/", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    state = wired.state()
    assert state["route"] == "plan" and state["sources"]["oauth"]["ok"]
    assert wired.usage.hits("/api/oauth/usage")  # it read the sandbox's config, not the real one
    assert os.path.exists(wired.state_dir / "tick.log")


def test_percent_signs_in_paths_are_escaped_for_cron(sandbox, real_crontab):
    state = sandbox.root / "100%state"
    proc = sandbox.run("install", "cron", env={"SPILLOVER_STATE_DIR": str(state)})
    assert proc.returncode == 0, proc.stderr
    line = ours(crontab_l())[0]
    assert re.search(r"(?<!\\)%", line) is None, line
    assert "100\\%state" in line


def test_no_crontab_command_is_a_clear_error(sandbox, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = sandbox.run("install", "cron", env={"PATH": str(empty)})
    assert proc.returncode == 1
    assert "no `crontab` command" in proc.stderr
    assert "spillover install schedule" in proc.stderr and "systemd user timer" in proc.stderr and "launchd" in proc.stderr


def test_cron_template_is_shipped_and_documented():
    from spillover import paths

    template = install.cron_template()
    assert template.startswith("* * * * * @ENV@@SPILLOVER@ tick >>@LOG@ 2>&1")
    with open(paths.shipped("spillover.cron"), encoding="utf-8") as handle:
        text = handle.read()
    for placeholder in ("@ENV@", "@SPILLOVER@", "@LOG@"):
        assert f"#   {placeholder}" in text
    repo_copy = os.path.join(os.path.dirname(paths.__file__), os.pardir, "cron", "spillover.cron")
    if os.path.exists(repo_copy):  # a checkout: cron/ holds the same template
        with open(repo_copy, encoding="utf-8") as handle:
            assert handle.read() == text
