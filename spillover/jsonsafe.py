"""JSON from outside (servers, meters, Claude Code's files): hostile nesting is data, not a crash.

`json.loads` recurses once per level and raises RecursionError (not ValueError) on a document
nested a few thousand levels deep; a 429 body can be one. Only `json` is imported: the
statusline's hot path uses this too.
"""

import json
import os
import stat

MAX_DEPTH = 64  # no answer spillover reads nests more than a handful of levels


def loads(text, max_depth=MAX_DEPTH):
    """Parse `text`; raise ValueError for invalid JSON and for nesting deeper than `max_depth`."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if isinstance(data, (dict, list)):
        _check_depth(data, max_depth)
    return data


def load(handle, max_depth=MAX_DEPTH):
    return loads(handle.read(), max_depth)


def _check_depth(data, max_depth):
    level = [data]
    for _ in range(max_depth):
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        if not level:
            return
    raise ValueError(f"JSON nested deeper than {max_depth} levels")


def read_regular(path, limit):
    """(bytes, stat) of a regular file of at most `limit` bytes. A FIFO would hang the reader and
    `/dev/zero` would fill memory, so anything but a regular file is refused (OSError), and so
    is a file over the limit. Opened non-blocking: opening a FIFO does not wait for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path}: larger than {limit // 1024} KiB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(f"{path}: larger than {limit // 1024} KiB")
    return data, info


def read_file(path, limit):
    """The text of a regular file of at most `limit` bytes (see read_regular)."""
    return read_regular(path, limit)[0].decode("utf-8", "replace")


def load_file(path, limit, max_depth=MAX_DEPTH):
    """A JSON document from a regular file under `limit` bytes (OSError or ValueError otherwise)."""
    return loads(read_file(path, limit), max_depth)
