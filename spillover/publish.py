"""Render the route as inert env files and publish them atomically (design §2, §3).

route.env is POSIX sh: only comments, `export NAME='value'` and `unset NAME`. route.fish is the
same for fish. Neither carries a timestamp, so a file changes only when the route does, and
direnv and the prompt hooks reload only then.
"""

import json
import os
import tempfile

from spillover import paths
from spillover.errors import SpilloverError

HEADER = "# spillover route file: written by `spillover tick`; do not edit (spillover pin/unpin to steer)."


def sh_quote(value):
    """Single-quote for POSIX sh, bash, zsh and direnv: the only special character is the quote itself."""
    return "'" + value.replace("'", "'\\''") + "'"


def fish_quote(value):
    """Single-quote for fish, where backslash and quote are the escapes inside single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dotenv_quote(value):
    """Quote a value for a python-dotenv file (the config file). python-dotenv decodes backslash
    escapes even inside single quotes, so a value with a backslash takes the double-quoted form."""
    if "'" not in value and "\\" not in value:
        return "'" + value + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text):
    return " ".join(str(text).split())  # one line, whatever the reason holds


def render_sh(pairs, route, reason=""):
    lines = [HEADER, f"# route: {route}"]
    if reason:
        lines.append(f"# reason: {_comment(reason)}")
    unset = []
    for name, value in pairs:
        if value is None:
            unset.append(name)
        else:
            lines.append(f"export {name}={sh_quote(value)}")
    if unset:
        lines.append("unset " + " ".join(unset))
    return "\n".join(lines) + "\n"


def render_fish(pairs, route, reason=""):
    lines = [HEADER, f"# route: {route}"]
    if reason:
        lines.append(f"# reason: {_comment(reason)}")
    # `-g`: a bare `set -e` would also erase a universal variable, for good, from every session.
    lines += [f"set -e -g {name}" for name, value in pairs if value is None]
    lines += [f"set -gx {name} {fish_quote(value)}" for name, value in pairs if value is not None]
    # `set -e` of an unset variable leaves status 4, which `set -gx` keeps and `source` returns.
    lines.append("true")
    return "\n".join(lines) + "\n"


def ensure_state_dir(path=None):
    """The state dir, created 0700. Refused (as ssh refuses ~/.ssh) when it is someone else's or
    others can write it: nothing is read or written there then."""
    path = path or paths.state_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        import pwd

        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        fix = (f"chmod 700 '{path}' once you know nobody else put files in it" if info.st_uid == os.getuid() else
               "point SPILLOVER_STATE_DIR (or XDG_STATE_HOME) at a directory only you can write, or unset it for ~/.local/state/spillover")
        raise SpilloverError(f"state dir {path} is not yours alone (owner {owner}, mode {info.st_mode & 0o7777:o}): "
                             f"nothing was read or written there; fix: {fix}")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def atomic_write(path, text, mode=0o600):
    """Temp file in the same dir, fsync, os.replace: readers see the old or the new file, never half."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def write_if_changed(path, text, mode=0o600):
    """Write only when the content differs (direnv reloads on mtime). Returns True when written."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                if os.stat(path).st_mode & 0o777 != mode:
                    os.chmod(path, mode)
                return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text, mode)
    # mtime after the rename, not of the temp file's last write: a prompt hook that stamped in
    # between would otherwise see its stamp as newer than the new file and miss the change.
    os.utime(path)
    return True


def read_json(path, default=None):
    """A JSON file, or `default` when it is missing or damaged (the caller records the damage)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default
    except (OSError, ValueError):
        return default


def write_json(path, data):
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def append_jsonl(path, record):
    """One line, one write(2) in O_APPEND mode: concurrent appenders never interleave a line."""
    line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path):
    """Records of a JSONL file; damaged lines (a crash mid-write) are skipped."""
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        pass
    return records


def publish_route(state_dir, route, pairs, reason=""):
    """Write route.env and route.fish (each only when changed). Returns True when route.env changed."""
    changed = write_if_changed(os.path.join(state_dir, paths.ROUTE_ENV), render_sh(pairs, route, reason))
    write_if_changed(os.path.join(state_dir, paths.ROUTE_FISH), render_fish(pairs, route, reason))
    return changed
