"""`spillover install|uninstall direnv|shell|statusline|all`: idempotent, reversible, --dry-run
writes nothing. (cron has its own file, with the real crontab.)"""

import json
import os
import sys

import pytest

from spillover import install, paths
from tests.test_cron import crontab_l, real_crontab  # noqa: F401  (fixture)
from tests.test_schedule import FakeBin

SPILLOVER = os.path.join(os.path.dirname(sys.executable), "spillover")


def snapshot(root):
    """Every file under root with its bytes, mode, and symlink target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                out[path] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as handle:
                    out[path] = (handle.read(), os.stat(path).st_mode & 0o777)
    return out


# --- direnv -----------------------------------------------------------------------------------


def test_direnv_lib_written_once_rewritten_when_different_removed_on_uninstall(sandbox):
    lib = sandbox.home / ".config/direnv/lib/spillover.sh"
    proc = sandbox.run("install", "direnv", check=True)
    assert proc.stdout.startswith("direnv: wrote ~/.config/direnv/lib/spillover.sh")
    assert lib.read_text() == install.direnv_text()
    old = os.stat(lib).st_mtime_ns - 10_000_000_000
    os.utime(lib, ns=(old, old))
    proc = sandbox.run("install", "direnv", check=True)
    assert "up to date, unchanged" in proc.stdout
    assert os.stat(lib).st_mtime_ns == old  # not rewritten: direnv would reload every .envrc

    lib.write_text(lib.read_text().replace("_SPILLOVER_DIRENVRC_VERSION=0.1.0", "_SPILLOVER_DIRENVRC_VERSION=0.0.1"))
    proc = sandbox.run("install", "direnv", check=True)
    assert proc.stdout.startswith("direnv: updated")
    assert lib.read_text() == install.direnv_text()

    proc = sandbox.run("uninstall", "direnv", check=True)
    assert proc.stdout.startswith("direnv: removed") and not lib.exists()


def test_direnv_uninstall_leaves_a_foreign_file_alone(sandbox):
    lib = sandbox.home / ".config/direnv/lib/spillover.sh"
    lib.parent.mkdir(parents=True)
    lib.write_text("# my own spillover helper\n")
    proc = sandbox.run("uninstall", "direnv", check=True)
    assert "not written by spillover, left alone" in proc.stdout
    assert lib.read_text() == "# my own spillover helper\n"


# --- shell ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell,rc", [("bash", ".bashrc"), ("zsh", ".zshrc"), ("fish", ".config/fish/config.fish")])
def test_shell_hook_appended_once_and_removed_exactly(sandbox, shell, rc):
    path = sandbox.home / rc
    path.parent.mkdir(parents=True, exist_ok=True)
    original = "# my rc\nalias ll='ls -l'"  # no trailing newline: install must not glue onto it
    path.write_text(original)
    path.chmod(0o640)
    proc = sandbox.run("install", "shell", env={"SHELL": f"/usr/bin/{shell}"}, check=True)
    assert proc.stdout.startswith(f"shell: appended the {shell} hook to ~/{rc}")
    text = path.read_text()
    want = f"'{SPILLOVER}' hook fish | source" if shell == "fish" else f"eval \"$('{SPILLOVER}' hook {shell})\""
    assert text == original + "\n\n" + install.RC_MARKER + "\n" + want + "\n"
    assert os.stat(path).st_mode & 0o777 == 0o640
    proc = sandbox.run("install", "shell", "--shell", shell, check=True)
    assert "unchanged" in proc.stdout and path.read_text() == text

    proc = sandbox.run("uninstall", "shell", check=True)  # no --shell: every rc file is cleaned
    assert proc.stdout.strip() == f"shell: removed the hook from ~/{rc}"
    assert path.read_text() == original + "\n"


def test_shell_install_writes_through_a_symlinked_rc(sandbox):
    dotfiles = sandbox.root / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "bashrc").write_text("# managed elsewhere\n")
    (sandbox.home / ".bashrc").symlink_to(dotfiles / "bashrc")
    sandbox.run("install", "shell", "--shell", "bash", check=True)
    assert (sandbox.home / ".bashrc").is_symlink()
    assert install.RC_MARKER in (dotfiles / "bashrc").read_text()
    sandbox.run("uninstall", "shell", check=True)
    assert (dotfiles / "bashrc").read_text() == "# managed elsewhere\n"


def test_shell_install_without_a_known_shell_is_a_usage_error(sandbox):
    proc = sandbox.run("install", "shell", env={"SHELL": "/bin/tcsh"})
    assert proc.returncode == 2
    assert "pass --shell bash, zsh or fish" in proc.stderr


def test_shell_install_replaces_a_stale_hook_line(sandbox):
    rc = sandbox.home / ".bashrc"
    rc.write_text(f"{install.RC_MARKER}\neval \"$('/old/bin/spillover' hook bash)\"\n# after\n")
    proc = sandbox.run("install", "shell", "--shell", "bash", check=True)
    assert proc.stdout.startswith("shell: updated the bash hook")
    assert rc.read_text() == f"{install.RC_MARKER}\neval \"$('{SPILLOVER}' hook bash)\"\n# after\n"


# --- statusline -------------------------------------------------------------------------------


def settings(sandbox):
    return json.loads((sandbox.claude_dir / "settings.json").read_text())


def test_statusline_saves_the_previous_one_keeps_other_keys_and_restores_it(sandbox):
    sandbox.claude_dir.mkdir(parents=True)
    previous = {"type": "command", "command": "~/bin/my-status --fancy", "padding": 1}
    original = {"model": "opus", "statusLine": previous, "env": {"FOO": "bar"}, "permissions": {"allow": ["Bash(ls:*)"]}}
    (sandbox.claude_dir / "settings.json").write_text(json.dumps(original, indent=2))
    saved = sandbox.home / ".config/spillover/statusline-previous.json"

    proc = sandbox.run("install", "statusline", check=True)
    assert "saved your statusLine" in proc.stdout
    got = settings(sandbox)
    assert got["statusLine"] == {"type": "command", "command": f"'{SPILLOVER}' statusline", "refreshInterval": install.STATUSLINE_REFRESH}
    assert {k: v for k, v in got.items() if k != "statusLine"} == {k: v for k, v in original.items() if k != "statusLine"}
    assert list(got) == list(original)  # key order kept
    assert json.loads(saved.read_text()) == previous
    assert os.stat(saved).st_mode & 0o777 == 0o600

    proc = sandbox.run("install", "statusline", check=True)  # idempotent: ours is never saved as "previous"
    assert "unchanged" in proc.stdout
    assert json.loads(saved.read_text()) == previous

    proc = sandbox.run("uninstall", "statusline", check=True)
    assert "restored your previous statusLine" in proc.stdout
    assert settings(sandbox) == original
    assert not saved.exists()


def test_statusline_without_a_previous_one_removes_the_key_on_uninstall(sandbox):
    sandbox.run("install", "statusline", check=True)
    assert settings(sandbox)["statusLine"]["command"].endswith(" statusline")
    assert not (sandbox.home / ".config/spillover/statusline-previous.json").exists()
    assert os.stat(sandbox.claude_dir / "settings.json").st_mode & 0o777 == 0o600
    sandbox.run("uninstall", "statusline", check=True)
    assert settings(sandbox) == {}


def test_statusline_refuses_a_damaged_settings_file(sandbox):
    sandbox.claude_dir.mkdir(parents=True)
    (sandbox.claude_dir / "settings.json").write_text("{not json")
    proc = sandbox.run("install", "statusline")
    assert proc.returncode == 1 and "not valid JSON" in proc.stderr
    assert (sandbox.claude_dir / "settings.json").read_text() == "{not json"


def test_statusline_uninstall_leaves_someone_elses_statusline(sandbox):
    sandbox.claude_dir.mkdir(parents=True)
    (sandbox.claude_dir / "settings.json").write_text(json.dumps({"statusLine": {"type": "command", "command": "mine"}}))
    proc = sandbox.run("uninstall", "statusline", check=True)
    assert "left alone" in proc.stdout
    assert settings(sandbox) == {"statusLine": {"type": "command", "command": "mine"}}


def test_previous_statusline_path_is_the_contract_with_the_statusline_command(sandbox):
    assert install.previous_statusline_path() == os.path.join(paths.config_home(), "spillover", "statusline-previous.json")


# --- all --------------------------------------------------------------------------------------


def test_dry_run_all_writes_nothing(sandbox, real_crontab, tmp_path_factory):
    (sandbox.home / ".bashrc").write_text("# mine\n")
    before = snapshot(sandbox.root)
    proc = sandbox.run("install", "all", "--dry-run", env=dict(FakeBin(tmp_path_factory.mktemp("bin"), cron=True).env(sandbox), SHELL="/bin/bash"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["schedule", "cron", "direnv", "shell", "statusline", "live"]
    assert all(" would " in line for line in lines), lines
    assert snapshot(sandbox.root) == before
    assert crontab_l() is None


def test_install_all_then_uninstall_all_restores_everything(sandbox, real_crontab, tmp_path_factory):
    (sandbox.home / ".bashrc").write_text("# mine\n")
    sandbox.claude_dir.mkdir(parents=True)
    (sandbox.claude_dir / "settings.json").write_text(json.dumps({"statusLine": {"type": "command", "command": "mine"}}, indent=2) + "\n")
    env = dict(FakeBin(tmp_path_factory.mktemp("bin"), cron=True).env(sandbox), SHELL="/bin/bash")  # a cron daemon runs
    before = snapshot(sandbox.root)
    proc = sandbox.run("install", "all", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 7  # the scheduler chosen, then one per action (statusline: save + set)
    assert len([l for l in crontab_l().splitlines() if install.CRON_MARKER in l]) == 1
    again = sandbox.run("install", "all", env=env)
    assert all("unchanged" in line for line in again.stdout.splitlines()[1:]), again.stdout

    proc = sandbox.run("uninstall", "all", env=env, check=True)
    assert crontab_l() is None
    after = snapshot(sandbox.root)
    created = set(after) - set(before)
    assert all(p.startswith(str(sandbox.state_dir)) for p in created), created  # only the state dir (the log's home)
    assert {p: v for p, v in after.items() if p in before} == before


def test_install_all_reports_each_failure_and_goes_on(sandbox, tmp_path):
    proc = sandbox.run("install", "all", env={"SHELL": "/bin/bash", "PATH": str(FakeBin(tmp_path).dir)})
    assert proc.returncode == 1
    assert "schedule: ✖ no scheduler that runs here" in proc.stderr
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == ["direnv", "shell", "statusline", "live"]
