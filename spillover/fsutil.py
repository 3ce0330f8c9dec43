"""Files in the state dir: the tick lock, atomic writes, JSON and JSONL.

Only os, json and fcntl at import: the statusline's compaction takes the lock through this module
(ctypes is imported by `exchange`, for a settings.json write only).
"""

import errno
import fcntl
import json
import os
import stat

from spillover import jsonsafe

TEMP_PREFIX = ".tmp-"  # atomic_write's temp files; a killed writer's are removed by the tick


class Busy(Exception):
    """Another process holds the lock."""


class Lock:
    """Non-blocking flock on the state dir's lock file; released when the process dies.

    `with Lock(state_dir):` raises Busy when another tick (or compaction) holds it.
    """

    def __init__(self, state_dir, name=None, wait=None):
        from spillover import paths

        self.path = os.path.join(state_dir, name or paths.LOCK)
        self.fd = None
        self.wait = wait  # seconds to wait for the holder; None: do not wait

    def __enter__(self):
        import time

        self.fd = open_private(self.path, os.O_RDWR)
        deadline = time.monotonic() + (self.wait or 0)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise Busy() from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        os.close(self.fd)


def open_private(path, flags, mode=0o600):
    """Open (creating it if missing) a small file of ours without following a symlink, without
    blocking on a FIFO, and only if it is a regular file: a name planted in the state dir can
    never redirect a write elsewhere."""
    fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def touch(path, mtime):
    """Set `path`'s mtime (creating it empty): through the opened descriptor, never a link."""
    fd = open_private(path, os.O_WRONLY)
    try:
        os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


def owner_name(uid):
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def trust_problem(path, what, info=None):
    """None when `path` (a file, or a directory) and the directory holding it belong to the user
    (or root) and nobody else can write them, as ssh requires of ~/.ssh; else one line naming the
    path, its owner and mode, and the fix. A sticky directory (like /tmp) may be writable by all."""
    try:
        info = info or os.stat(path)
    except OSError:
        return None
    me = os.getuid()
    for where, st in ((path, info), (os.path.dirname(os.path.realpath(path)) or "/", None)):
        try:
            st = st or os.stat(where)
        except OSError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        loose = mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX and where != path)
        if st.st_uid not in (me, 0) or loose:
            label = what if where == path else f"the directory of {what} {path}:"
            if st.st_uid not in (me, 0):
                fix = f"use a {what} of your own (this one is {owner_name(st.st_uid)}'s; check what it holds before trusting it)"
            else:
                fix = f"chmod go-w '{where}' once you know nobody else changed it"
            return (f"{label} {where} is not yours alone (owner {owner_name(st.st_uid)}, mode {mode:o}): "
                    f"refused; fix: {fix}")
    return None


def ensure_dir(path, mode=0o700):
    """Create `path` (and parents) and make sure it is not open to others."""
    os.makedirs(path, mode=mode, exist_ok=True)
    if os.stat(path).st_mode & 0o077 & ~mode:
        os.chmod(path, mode)
    return path


def ensure_state_dir(path=None):
    """The state dir, created 0700. Refused (as ssh refuses ~/.ssh) when it is someone else's or
    others can write it: nothing is read or written there then."""
    from spillover import paths
    from spillover.errors import SpilloverError

    path = path or paths.state_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        owner = owner_name(info.st_uid)
        fix = (f"chmod 700 '{path}' once you know nobody else put files in it" if info.st_uid == os.getuid() else
               "point SPILLOVER_STATE_DIR (or XDG_STATE_HOME) at a directory only you can write, or unset it for ~/.local/state/spillover")
        raise SpilloverError(f"state dir {path} is not yours alone (owner {owner}, mode {info.st_mode & 0o7777:o}): "
                             f"nothing was read or written there; fix: {fix}")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def _write_temp(directory, data, mode):
    """A new file in `directory` with a random exclusive name holding `data`, fsynced: its path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    for _ in range(100):
        tmp = os.path.join(directory, TEMP_PREFIX + os.urandom(6).hex())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temp name in {directory}")
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory):
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write(path, data, mode=0o600):
    """Write `data` (str or bytes) to a new file beside `path` with a random exclusive name, fsync
    it, then os.replace: readers see the old file or the new one, never half of one."""
    directory = os.path.dirname(path) or "."
    tmp = _write_temp(directory, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)


def file_key(info):
    """One version of one file: a rename keeps it, a rewrite in place or by temp + rename does not
    (inode, then mtime and size for a writer that truncates and writes the same inode)."""
    return None if info is None else (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


_EXCHANGE = []  # [(swap call or None, get_errno)], looked up once per process


def _exchange_call():
    if not _EXCHANGE:
        import ctypes  # only here: a write that needs the swap, never a hot command's import

        call = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if hasattr(libc, "renameat2"):  # Linux, glibc 2.28+: renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
                renameat2 = libc.renameat2
                renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
                call = lambda a, b: renameat2(-100, a, -100, b, 2)  # noqa: E731
            elif hasattr(libc, "renamex_np"):  # macOS: renamex_np(a, b, RENAME_SWAP)
                renamex_np = libc.renamex_np
                renamex_np.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint)
                call = lambda a, b: renamex_np(a, b, 2)  # noqa: E731
        except (OSError, AttributeError):
            call = None
        _EXCHANGE.append((call, ctypes.get_errno))
    return _EXCHANGE[0]


def exchange(a, b):
    """Swap the names `a` and `b` in one step: each then names the other's file. NotImplementedError
    where the system or the file system cannot (no renameat2/renamex_np, EINVAL, ENOTSUP)."""
    call, get_errno = _exchange_call()
    if call is None:
        raise NotImplementedError("no renameat2 or renamex_np here")
    if call(os.fsencode(a), os.fsencode(b)) != 0:
        err = get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise NotImplementedError(os.strerror(err))
        raise OSError(err, os.strerror(err), a)


def replace_if_current(path, data, *, mode, expected, only_if=None, read_limit=1 << 20):
    """Replace the file at `path` by `data` only while `path` still holds the version `expected`
    (`file_key`; None: no file). Returns (replaced, others): `others` holds the bytes of each
    file another writer put at `path` in between, which this commit displaced and put back.

    `only_if` is the caller's last look just before the commit. Where two names can be swapped in
    one step (`exchange`), the commit is checked after the fact too: the file it displaced is
    looked at, and when another writer's version landed between the last look and the swap, it
    goes back at once (`_put_back`), so a concurrent write is not lost. Elsewhere the commit is a
    plain rename after `only_if`. A missing file is created with a hard link, which fails rather
    than replace a file created meanwhile."""
    directory = os.path.dirname(path) or "."
    tmp = _write_temp(directory, data, mode)
    replaced, others = False, []
    try:
        ours = file_key(os.lstat(tmp))
        if only_if is not None and not only_if():
            return False, []
        if expected is None:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False, []
            except OSError:
                os.replace(tmp, path)  # a file system without hard links
            replaced = True
            return True, []
        try:
            exchange(tmp, path)
        except NotImplementedError:
            os.replace(tmp, path)
            replaced = True
            return True, []
        except FileNotFoundError:
            return False, []  # removed since the last look: the caller looks again
        displaced = os.lstat(tmp)
        if file_key(displaced) == expected:
            replaced = True
            return True, []
        others = _put_back(tmp, path, displaced, ours, read_limit)
        return False, others
    finally:
        _unlink_quietly(tmp)
        if replaced:
            _fsync_dir(directory)


def _put_back(tmp, path, theirs, ours, read_limit):
    """`tmp` holds another writer's version (stat `theirs`) that the swap just displaced from
    `path`: swap it back before anything else, so no reader sees ours for longer than two calls;
    read it afterwards through a descriptor opened before. If yet another version landed on
    `path` meanwhile, it comes out instead of ours and goes back the same way. Returns the bytes
    of each such version, for the caller to carry onto its next read."""
    others, comes_back = [], ours
    for _ in range(20):
        fd = os.open(tmp, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            try:
                exchange(tmp, path)
            except FileNotFoundError:
                try:
                    os.link(tmp, path)  # `path` removed meanwhile: theirs is still the newest
                except FileExistsError:
                    continue
                back = None
            else:
                back = os.lstat(tmp)
            if stat.S_ISREG(theirs.st_mode) and theirs.st_size <= read_limit:
                with os.fdopen(fd, "rb", closefd=False) as handle:
                    others.append(handle.read(read_limit + 1))
        finally:
            os.close(fd)
        if back is None or file_key(back) == comes_back:
            return others
        comes_back, theirs = file_key(theirs), back
    return others


def write_if_changed(path, text, mode=0o600):
    """Write only when the content differs (direnv reloads on mtime). Returns True when written."""
    try:
        # Never through a link or into a FIFO: a planted name is replaced, not followed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_size == len(text.encode("utf-8")):
                with os.fdopen(fd, encoding="utf-8", closefd=False) as handle:
                    same = handle.read() == text
                if same:
                    if info.st_mode & 0o777 != mode:
                        os.fchmod(fd, mode)
                    return False
        finally:
            os.close(fd)
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text, mode)
    # mtime after the rename, not of the temp file's last write: a prompt hook that stamped in
    # between would otherwise see its stamp as newer than the new file and miss the change.
    os.utime(path, follow_symlinks=False)
    return True


def remove_orphan_temp_files(directory, now, older_than=300):
    """Temp files of writers killed mid-write; never a live one."""
    for name in os.listdir(directory):
        if name.startswith(TEMP_PREFIX):
            path = os.path.join(directory, name)
            try:
                if now - os.path.getmtime(path) > older_than:
                    os.unlink(path)
            except OSError:
                pass


def read_json(path, default=None):
    """A JSON file, or `default` when it is missing or damaged (the caller records the damage)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return jsonsafe.load(handle)
    except (OSError, ValueError):
        return default


def read_json_object(path):
    """A JSON file's top-level object, or {} when it is missing, damaged or not an object."""
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def write_json(path, data):
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def append_jsonl(path, record, sort_keys=True, ensure_ascii=False):
    """One line, one write(2) in O_APPEND mode: concurrent appenders never interleave a line.
    Returns the file's size after the write."""
    line = (json.dumps(record, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n").encode("utf-8")
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def read_jsonl(path):
    """The JSON objects of a JSONL file, one per line; damaged lines (a crash mid-write) are skipped."""
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = jsonsafe.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        pass
    return records
