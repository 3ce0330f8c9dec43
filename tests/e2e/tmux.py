"""Drive an interactive program (the real `claude`) in a private tmux server.

Each `Pane` runs its own tmux server on a socket in the test's tmp dir (`tmux -S`), so nothing is
shared with a user's tmux or with another test. Tests read what the program did from the fake
servers' request logs, not from the screen; `screen()` is for failure messages and for the few
waits that can only be seen there (the prompt box being ready).
"""

import os
import shlex
import shutil
import subprocess
import time


class Pane:
    def __init__(self, socket, name="live"):
        self.socket, self.name = str(socket), name
        self.tmux = shutil.which("tmux")
        if self.tmux is None:
            raise RuntimeError("tmux is not installed")

    def _run(self, *args, check=True):
        return subprocess.run([self.tmux, "-S", self.socket, *args], capture_output=True, text=True, timeout=20, check=check)

    def start(self, argv, *, env, cwd, width=160, height=50):
        """Start `argv` in a new detached session with exactly `env` (nothing of this process leaks in)."""
        command = "exec env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + " ".join(shlex.quote(a) for a in argv)
        conf = self.socket + ".conf"
        with open(conf, "w", encoding="utf-8") as handle:
            # Keep a pane whose program exited, so its last screen can be shown.
            handle.write("set -g remain-on-exit on\nset -g history-limit 5000\n")
        self._run("-f", conf, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), "-c", str(cwd), command)

    def screen(self):
        proc = self._run("capture-pane", "-p", "-t", self.name, check=False)
        return proc.stdout

    def alive(self):
        proc = self._run("list-panes", "-t", self.name, "-F", "#{pane_dead}", check=False)
        return proc.returncode == 0 and proc.stdout.strip() == "0"

    def keys(self, *keys):
        """tmux key names: "Enter", "Escape", "C-c", "Down"…"""
        self._run("send-keys", "-t", self.name, *keys)

    def type(self, text, enter=True):
        self._run("send-keys", "-t", self.name, "-l", text)
        if enter:
            time.sleep(0.3)  # the TUI reads a pasted burst and the Enter apart
            self.keys("Enter")

    def wait_screen(self, predicate, timeout=30, interval=0.2):
        """Wait until predicate(screen text) is true; returns the screen, or raises with it."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting on the screen:\n{text}")

    def kill(self):
        self._run("kill-server", check=False)
        try:
            os.unlink(self.socket)
        except OSError:
            pass


def wait_for(predicate, timeout=30, interval=0.1, what="condition", screen=None):
    """Poll predicate() until it returns a truthy value; raise with the screen on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    extra = f"\nscreen:\n{screen()}" if screen else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
