"""Run a child with a deadline, and on timeout kill its whole process group (its own children too)."""

import os
import signal
import subprocess


class Timeout(Exception):
    """The child did not finish in time; its process group was killed."""


def run(argv, *, input=None, timeout, env=None, stdout=True, stderr=True):
    """(returncode, stdout bytes or None, stderr bytes or None) of `argv` run in its own session.

    OSError when it cannot start; Timeout when it outlives `timeout` (its group is SIGKILLed and
    a grandchild that escaped the group and holds a pipe is not waited for).
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                            stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.communicate(timeout=1)
        except (OSError, subprocess.SubprocessError):
            pass
        raise Timeout() from None
    return proc.returncode, out, err
