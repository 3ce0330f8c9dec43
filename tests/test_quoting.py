"""Quoting is proven, not hoped (design §2: the env file is inert data).

Hypothesis generates the configuration values that end up in route.env — the OpenRouter key (printable
ASCII, as keys are), the base URL Claude Code gets, the model slugs — from quotes, `$()`, backticks, backslashes, globs,
newlines, control characters and unicode. Each set of values is either refused when the config
is loaded, with a ConfigError naming the key (and never echoing a secret), or it reaches real
bash, zsh, fish and direnv byte for byte: route.env / route.fish are rendered as the tick renders
them, each shell sources its file and writes the variables with `printf '%s\\0'` to a file, and
the bytes are compared. One shell per example checks all variables at once.

Text a server sends is never configuration: it is either ignored (a healthy /key answer's label
and limit_reset leave route.env untouched) or, when it explains a failure, it can only appear
inside the quoted reason, as one line of plain printable text.
"""

import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spillover import config, targets
from spillover.publishers import env_files as publish
from spillover.errors import ConfigError
from spillover.redact import mask
from tests import fakes
from tests.conftest import REPO, sandbox_env

SHOWN = ("SPILLOVER_ROUTE", "SPILLOVER_REASON") + targets.ROUTING_VARS + targets.MODEL_VARS
NASTY = ["'", '"', "\\", "$", "$(", ")", "`", "${", "}", "!", "*", "?", "[", "]", "~", ";", "&", "|", "<", ">", " ",
         "\u2028", "é", "中", "🙂", "\u200f", "\ufeff", "%s", "%", "-e", "--", "#", "=", "\\n", "\\'"]
CONTROLS = ["\t", "\n", "\r", "\x00", "\x1b", "\x7f"]
# Printable trouble: what must reach the shells intact.
printable = st.lists(st.one_of(st.sampled_from(NASTY), st.characters(blacklist_categories=("Cs", "Cc"))), max_size=12).map("".join)
# Anything at all, controls included: what must be refused when it cannot be carried.
anything = st.lists(st.one_of(st.sampled_from(NASTY + CONTROLS), st.characters(blacklist_categories=("Cs",))), max_size=12).map("".join)
# A key is printable ASCII without spaces (and no `<`/`>` placeholder): quotes, `$()`, backticks and
# backslashes are all allowed in it and must reach the shells intact.
KEY_NASTY = [n for n in NASTY if n.isascii() and n.isprintable() and not set(n) & set(" <>")]
key_text = st.lists(st.one_of(st.sampled_from(KEY_NASTY), st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="<>")),
                    min_size=12, max_size=24).map("".join)
good_slug = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/~@+\-\[\]]{0,30}\Z")


def config_values(text, slug, key):
    return st.fixed_dictionaries({
        "OPENROUTER_API_KEY": key,
        "SPILLOVER_OPENROUTER_BASE_URL": st.one_of(
            text.map(lambda t: "http://127.0.0.1:8080/" + t),
            text.map(lambda t: "https://openrouter.ai/" + t),
            text.map(lambda t: "http://[::1]/" + t),
        ),
        "SPILLOVER_OPUS_MODEL": slug,
        "SPILLOVER_SONNET_MODEL": slug,
        "SPILLOVER_HAIKU_MODEL": slug,
        "SPILLOVER_SUBAGENT_MODEL": slug,
    })


carried = config_values(printable, good_slug, key_text.map(lambda t: "sk-or-v1-" + t))
hostile = config_values(anything, st.one_of(good_slug, anything.map(lambda t: "anthropic/" + t), anything),
                        st.one_of(anything.map(lambda t: "sk-or-v1-" + t), anything))
# The reason is not configuration but spillover's own words (and, on failures, a server's):
# it must survive quoting too.
reasons = printable.map(lambda t: "five_hour 96% ≥ 95% " + t)

SHELL_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NASTY_EXAMPLE = {
    "OPENROUTER_API_KEY": "sk-or-v1-'$(touch pwned)'`id`\"\\$HOME!*%s;&|",
    "SPILLOVER_OPENROUTER_BASE_URL": "http://127.0.0.1:8080/a'b\"c$(x)`y`\\z!*~%20é中",
    "SPILLOVER_OPUS_MODEL": "anthropic/claude-opus-4.8",
    "SPILLOVER_SONNET_MODEL": "anthropic/claude-sonnet-4.6[1m]",
    "SPILLOVER_HAIKU_MODEL": "anthropic/claude-haiku-4.5:free",
    "SPILLOVER_SUBAGENT_MODEL": "~@+-._:/x",
}


@pytest.fixture(scope="module")
def shells(tmp_path_factory):
    """A sandbox with direnv wired for `use spillover` (library installed, .envrc allowed)."""
    root = tmp_path_factory.mktemp("quoting")
    home, env = sandbox_env(root)
    env.pop("PYTHONPATH")
    subprocess.run([sys.executable, "-m", "spillover", "install", "direnv"], env=dict(env, PYTHONPATH=str(REPO)),
                   check=True, capture_output=True)
    project = root / "project"
    project.mkdir()
    (project / ".envrc").write_text("use spillover\n")
    subprocess.run(["direnv", "allow", str(project)], env=env, check=True, capture_output=True)
    os.makedirs(env["SPILLOVER_STATE_DIR"], mode=0o700, exist_ok=True)
    return {"root": root, "env": env, "project": project, "state": env["SPILLOVER_STATE_DIR"]}


def printf_all(shell):
    if shell == "fish":
        return "printf '%s\\0' " + " ".join(f'"${name}"' for name in SHOWN)
    return "printf '%s\\0' " + " ".join(f'"${{{name}}}"' for name in SHOWN)


def run_in_shells(box, out_dir):
    """{shell: bytes printed} after each shell took in the route the way it does in real life."""
    state, env = box["state"], box["env"]
    scripts = {
        "bash": ["bash", "--norc", "--noprofile", "-euo", "pipefail", "-c", f". '{state}/route.env'; {printf_all('bash')}"],
        "zsh": ["zsh", "-f", "-c", f". '{state}/route.env'; {printf_all('zsh')}"],
        "fish": ["fish", "--no-config", "-c", f"source '{state}/route.fish'; {printf_all('fish')}"],
        "direnv": ["direnv", "exec", str(box["project"]), "bash", "--norc", "-c", printf_all("bash")],
    }
    got = {}
    for shell, argv in scripts.items():
        proc = subprocess.run(argv, env=env, cwd=box["project"], capture_output=True, timeout=60)
        assert proc.returncode == 0, f"{shell}: {proc.stderr.decode(errors='replace')}"
        got[shell] = proc.stdout
    assert not list(out_dir.glob("pwned*")), "a value was executed"
    return got


def invalid_keys(raw):
    """The keys whose value alone is refused by the config loader."""
    bad = set()
    for name, value in raw.items():
        try:
            config.load(environ={name: value}, path="/nonexistent/config.env")
        except ConfigError:
            bad.add(name)
    return bad


def load_or_refuse(raw):
    """The Config, or None after checking the refusal names a bad key and echoes no secret."""
    bad = invalid_keys(raw)
    try:
        cfg = config.load(environ=dict(raw), path="/nonexistent/config.env")
    except ConfigError as exc:
        message = str(exc)
        assert bad, f"refused, but no single value is bad: {message}"
        named = [name for name in bad if message.startswith(name + "=") or f" {name}=" in message]
        assert named, f"the error does not name the bad key ({sorted(bad)}): {message}"
        secret = raw["OPENROUTER_API_KEY"].strip()
        # (a value that is nothing but a key's prefix, `sk-or-v1-`, holds no secret to echo)
        if message.startswith("OPENROUTER_API_KEY=") and len(secret) >= 8 and secret != mask(secret).rstrip("…"):
            assert secret not in message, "the error echoes the key"
        return None
    assert not bad, f"accepted although {sorted(bad)} alone is refused"
    assert cfg.openrouter_key == raw["OPENROUTER_API_KEY"].strip()
    assert cfg.openrouter_base_url == raw["SPILLOVER_OPENROUTER_BASE_URL"].strip().rstrip("/")
    for name in MODEL_KEYS:
        assert cfg.values[config.KEYS_BY_NAME[name].attr] == raw[name].strip()
    return cfg


MODEL_KEYS = ("SPILLOVER_OPUS_MODEL", "SPILLOVER_SONNET_MODEL", "SPILLOVER_HAIKU_MODEL", "SPILLOVER_SUBAGENT_MODEL")
CARRIED = []  # examples that went through the shells (see the last test of this group)


@SHELL_SETTINGS
@given(raw=carried, reason=reasons)
@example(raw=NASTY_EXAMPLE, reason="five_hour 96% ≥ 95% '$(touch pwned)'`touch pwned2`\n\\\"é")
def test_config_values_reach_every_shell_byte_for_byte_or_are_refused(shells, raw, reason):
    cfg = load_or_refuse(raw)
    if cfg is None or not cfg.openrouter_key:
        return  # refused with a clear error (checked), or no key: never routes to OpenRouter
    pairs = targets.route_env("openrouter", cfg, reason=reason)
    publish.publish_route(shells["state"], "openrouter", pairs, reason)
    expected_values = dict(pairs)
    expected = b"".join(expected_values[name].encode() + b"\0" for name in SHOWN)
    got = run_in_shells(shells, shells["project"])
    for shell, data in got.items():
        assert data == expected, f"{shell} got different bytes:\n{data!r}\nexpected\n{expected!r}"
    CARRIED.append(raw)


def test_most_generated_values_were_carried_through_the_shells():
    """Guards the property above against passing by refusing everything."""
    assert len(CARRIED) >= 20, f"only {len(CARRIED)} examples reached the shells"


@settings(max_examples=300, deadline=None)
@given(raw=hostile)
def test_hostile_values_are_carried_or_refused_naming_the_key(raw):
    cfg = load_or_refuse(raw)
    if cfg is not None:
        # Whatever was accepted renders to a file that holds no control character.
        text = publish.render_sh(targets.route_env("openrouter", cfg), "openrouter")
        assert not [c for c in text if ord(c) < 32 and c != "\n"], text


@settings(max_examples=300, deadline=None)
@given(value=anything)
def test_config_file_quoting_round_trips(tmp_path_factory, value):
    """`config set_value` writes what load reads back (the dotenv layer), or load refuses it."""
    path = tmp_path_factory.mktemp("cfg") / "config.env"
    raw = "sk-or-v1-" + value
    config.set_value(str(path), "OPENROUTER_API_KEY", raw)
    assert path.stat().st_mode & 0o777 == 0o600
    try:
        cfg = config.load(environ={}, path=str(path))
    except ConfigError as exc:
        assert str(exc).startswith("OPENROUTER_API_KEY="), exc
        return
    assert cfg.openrouter_key == raw.strip()


# --- nothing a server says reaches route.env unvalidated ----------------------------------------

EVIL = "x'; touch pwned; echo '$(touch pwned2)`touch pwned3`\n\x1b]0;owned\x07\x1b[2J\r\x00\"\\"
INERT_LINE = re.compile(r"#[^\n]*|export [A-Z_][A-Z0-9_]*='(?:[^']|'\\'')*'|unset(?: [A-Z_][A-Z0-9_]*)+")
INERT_FISH_LINE = re.compile(r"#[^\n]*|set -gx [A-Z_][A-Z0-9_]* '(?:[^'\\]|\\['\\])*'|set -e -g [A-Z_][A-Z0-9_]*|true")


def assert_inert(text, fish=False):
    grammar = INERT_FISH_LINE if fish else INERT_LINE
    assert re.fullmatch(rf"(?:(?:{grammar.pattern})\n)+", text), f"not inert data:\n{text}"
    controls = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0]
    assert not controls, f"control characters in the route file: {controls!r}"


def test_a_healthy_key_answer_full_of_metacharacters_changes_nothing(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(label=EVIL, limit_reset=EVIL, creator_user_id=EVIL))
    wired.run("tick", check=True)
    state = wired.state()
    assert state["route"] == "openrouter"
    cfg = config.load(environ=wired.env)
    reason = state["route_reason"]
    assert reason == "five_hour 96% ≥ 95%"
    # route.env is exactly what the configuration alone renders: the answer added nothing.
    pairs = targets.route_env("openrouter", cfg, reason=reason)
    assert wired.route_env() == publish.render_sh(pairs, "openrouter", reason)
    assert (wired.state_dir / "route.fish").read_text() == publish.render_fish(pairs, "openrouter", reason)
    for fragment in ("pwned", "owned", "\x1b"):
        assert fragment not in wired.route_env()


def test_server_text_in_a_failure_reason_is_inert(wired):
    """The reason for leaving a target may quote the server: it stays one line of plain text."""
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", status=401, json=fakes.error_body(401, EVIL))
    wired.run("tick", check=True)
    state = wired.state()
    assert state["route"] == "blocked" and "HTTP 401" in state["route_reason"]
    text = wired.route_env()
    assert_inert(text)
    assert_inert((wired.state_dir / "route.fish").read_text(), fish=True)
    # And sourcing it runs nothing, in any shell.
    env = dict(wired.env)
    for argv in (["bash", "--norc", "-euc", ". ./route.env; echo sourced"], ["zsh", "-f", "-c", ". ./route.env; echo sourced"],
                 ["fish", "--no-config", "-c", "source ./route.fish; echo sourced"]):
        proc = subprocess.run(argv, cwd=wired.state_dir, env=env, capture_output=True, text=True, timeout=30)
        assert proc.stdout == "sourced\n" and proc.stderr == "", (argv[0], proc.stdout, proc.stderr)
    assert not [p for p in wired.state_dir.iterdir() if p.name.startswith("pwned")]

    # A key that is low on money, with a limit_reset full of metacharacters: same.
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=0.25, limit_reset=EVIL))
    wired.run("tick", check=True)
    assert wired.state()["route"] == "blocked"
    assert_inert(wired.route_env())
    assert_inert((wired.state_dir / "route.fish").read_text(), fish=True)
