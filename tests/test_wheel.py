"""The shipped shell files are found when spillover is installed from a wheel, not only from a
checkout: build the wheel, install it into a fresh venv, `spillover install direnv` from there,
then a real direnv reload of a `use spillover` .envrc sees the route."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import fakes
from tests.conftest import REPO
from tests.test_direnv import enable_strict_env, make_project

SHIPPED = ("direnvrc", "hook.bash", "hook.zsh", "hook.fish", "spillover.cron")


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "spillover", src / "spillover", ignore=shutil.ignore_patterns("__pycache__"))
    dist = root / "dist"
    # Without build isolation setuptools needs `wheel` importable (requirements-test.txt has it).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("wheel") else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(dist), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = dist.glob("spillover-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return wheel, venv


def venv_env(sandbox):
    env = dict(sandbox.env)
    env.pop("PYTHONPATH")  # the installed wheel, not the checkout
    return env


def test_wheel_contains_the_real_shipped_files(wheel_venv):
    wheel, _ = wheel_venv
    with zipfile.ZipFile(wheel) as archive:
        for name in SHIPPED:
            data = archive.read(f"spillover/shell/{name}").decode()
            assert data == (REPO / "spillover" / "shell" / name).read_text()
        assert "use_spillover() {" in archive.read("spillover/shell/direnvrc").decode()
        assert not [n for n in archive.namelist() if n.startswith("spillover/shell/") and n.endswith(".py")]


def test_installed_wheel_drives_a_direnv_reload(wheel_venv, wired):
    _, venv = wheel_venv
    env = venv_env(wired)
    spillover = str(venv / "bin" / "spillover")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import spillover; print(spillover.__file__)"],
                           env=env, cwd=wired.root, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))

    proc = subprocess.run([spillover, "install", "direnv"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lib = Path(env["XDG_CONFIG_HOME"]) / "direnv" / "lib" / "spillover.sh"
    text = lib.read_text()
    assert "use_spillover() {" in text and text.endswith((REPO / "spillover" / "shell" / "direnvrc").read_text())

    enable_strict_env(wired)
    project = make_project(wired, env)
    assert subprocess.run([spillover, "tick", "--poll"], env=env, capture_output=True, text=True).returncode == 0
    seen = subprocess.run(["direnv", "exec", str(project), "printenv", "SPILLOVER_ROUTE"], env=env, capture_output=True, text=True)
    assert seen.stdout.strip() == "plan", seen.stderr

    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    assert subprocess.run([spillover, "tick", "--poll"], env=env, capture_output=True, text=True).returncode == 0
    script = f'cd {project} && eval "$(direnv export bash)" && printf "%s|%s\\n" "$SPILLOVER_ROUTE" "$ANTHROPIC_BASE_URL"'
    seen = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True)
    assert seen.stdout.strip() == f"openrouter|{wired.openrouter.url}/api", seen.stderr
    assert "spillover: route openrouter (five_hour 97% ≥ 95%)" in seen.stderr


def test_installed_wheel_hooks_and_cron_line(wheel_venv, sandbox):
    _, venv = wheel_venv
    env = venv_env(sandbox)
    spillover = str(venv / "bin" / "spillover")
    for shell in ("bash", "zsh", "fish"):
        out = subprocess.run([spillover, "hook", shell], env=env, capture_output=True, text=True, check=True).stdout
        assert out == (REPO / "spillover" / "shell" / f"hook.{shell}").read_text()
    out = subprocess.run([spillover, "install", "cron", "--dry-run"], env=dict(env, PATH=os.environ["PATH"]),
                         capture_output=True, text=True)
    if shutil.which("crontab"):
        assert f"'{venv}/bin/spillover' tick" in out.stdout and "-m spillover" not in out.stdout, out.stderr


# --- the README's quick start, installed with pipx ---------------------------------------------


def readme_quick_start():
    """The commands of the README's Quick start block, as written, without `make test`."""
    block = (REPO / "README.md").read_text().split("## Quick start\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return "\n".join(line for line in block.splitlines() if line.strip() != "make test") + "\n"


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed")
def test_readme_quick_start_with_pipx_then_the_scheduled_command_ticks_from_home(wheel_venv, sandbox, usage_server,
                                                                               openrouter_server, tmp_path_factory):
    from tests.conftest import OR_KEY
    from tests.test_schedule import FakeBin, shadowing_home, unit_command, user_env

    wheel, _ = wheel_venv
    home = sandbox.home
    sandbox.write_credentials()
    sandbox.write_config(SPILLOVER_CLAUDE_USAGE_URL=f"{usage_server.url}/api/oauth/usage",
                         OPENROUTER_API_URL=f"{openrouter_server.url}/api/v1",
                         SPILLOVER_OPENROUTER_BASE_URL=f"{openrouter_server.url}/api", SPILLOVER_TIMEOUT="2")
    fake = FakeBin(tmp_path_factory.mktemp("bin"), systemd=True, linger="yes")  # a desktop with systemd
    env = dict(user_env(sandbox), PATH=f"{fake.dir}:{os.environ['PATH']}", SHELL="/bin/bash",
               PIPX_HOME=str(home / ".local/pipx"), PIPX_BIN_DIR=str(home / ".local/bin"),
               SPILLOVER_SPEC=str(wheel))  # what `make quickstart` installs: the built wheel, not the checkout
    script = readme_quick_start()
    assert "sk-or-v1-…" in script and "make quickstart" in script
    proc = subprocess.run(["bash", "-eu", "-c", script.replace("sk-or-v1-…", OR_KEY)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    exe = home / ".local/bin/spillover"
    assert exe.is_symlink() and str(os.path.realpath(exe)).startswith(str(home / ".local/pipx"))
    assert f"quickstart: {home}/.local/bin is not on your PATH" in out
    assert "  bash: echo 'export PATH=\"$HOME/.local/bin:$PATH\"' >> ~/.bashrc" in out
    assert f"  fish: fish_add_path {home}/.local/bin" in out
    assert "schedule: runs the tick every minute with a systemd user timer" in out
    assert "systemctl --user enable --now spillover.timer" in fake.calls()
    settings = json.loads((home / ".claude/settings.json").read_text())
    assert settings["statusLine"]["command"] == f"'{exe}' statusline"
    assert f"eval \"$('{exe}' hook bash)\"" in (home / ".bashrc").read_text()
    assert sandbox.state()["route"] == "plan"  # the first tick
    assert "tick    last " in out and "tick    last never" not in out  # `spillover status` ran after the tick
    assert OR_KEY not in out + proc.stderr

    unit_env, argv = unit_command((home / ".config/systemd/user/spillover.service").read_text())
    assert unit_env == {"HOME": str(home)} and argv == [str(exe), "tick"]
    (sandbox.state_dir / "state.json").unlink()
    shadowing_home(sandbox, "package")
    run = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in unit_env.items()), *argv], cwd=home,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert sandbox.state()["route"] == "plan"
