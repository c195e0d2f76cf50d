"""The sandbox a submission runs in while it is graded: limits, a write fence, and a clean ending.

Grading runs a learner's notebook, that is, someone else's code, on the lecturer's computer. Every
submission gets its own fresh temporary folder (its working directory, ``HOME`` and ``TMPDIR``), and
its kernel is started through this module's launcher, which confines the process before it becomes
the kernel (``os.execv``, so the limits hold for the kernel and everything it starts):

- **memory**: ``RLIMIT_DATA`` (heap and private mappings, what an allocation takes; unlike
  ``RLIMIT_AS`` it does not count address space merely reserved, so threads and CUDA still start)
  — a 6 GiB tensor fails with an ordinary ``RuntimeError`` in its own cell;
- **processes**: ``RLIMIT_NPROC`` (the user's processes and threads: what the user runs already plus
  ``processes``; not enforced for root), and no core files;
- **writes**: where the Linux kernel has Landlock (5.13 or later; ``landlock_abi() > 0``), the process
  may write only inside its own folder and to ``/dev/null`` and ``/dev/shm`` — not the course, the
  other submissions, the claims ledger or the grader's files — and (Landlock ABI 6, Linux 6.12) may
  not send a signal to a process outside its sandbox, such as the grader. Reading stays allowed.

Every process of one run carries the environment variable ``MARKER`` with that run's value, so
``kill_marked`` can end them all afterwards, including a child that left the kernel's process group.

    python -m course_lib.sandbox --memory BYTES --processes N --writable DIR -- COMMAND ...

The grading process of each submission is this module too (``run_notebook``): it drives the confined
kernel, so a submission that kills its parent ends only that process, never the grader.
"""

import ctypes
import os
import platform
import resource
import signal
import sys
import time
from pathlib import Path

__all__ = [
    "MARKER",
    "landlock_abi",
    "limit_resources",
    "restrict_writes",
    "marked_processes",
    "kill_marked",
    "run_notebook",
    "main",
]

MARKER = "COURSE_GRADING_RUN"

# --------------------------------------------------------------------------- limits


def _user_tasks() -> int:
    """How many processes and threads this user runs now (``RLIMIT_NPROC`` counts them all)."""
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def limit_resources(memory: int | None, processes: int | None) -> None:
    """Limit this process (and what it starts) to ``memory`` bytes of data and ``processes`` more
    processes or threads than the user runs now; ``None`` leaves a limit as it is."""
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    if processes is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        wanted = _user_tasks() + processes
        resource.setrlimit(
            resource.RLIMIT_NPROC, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted,) * 2
        )
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# --------------------------------------------------------------------------- Landlock (Linux)
# The three system calls and the structures of <linux/landlock.h>; the numbers are the same on every
# architecture that has them (the generic system-call table).

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_WRITE_FILE, _TRUNCATE = 1 << 1, 1 << 14
_DIRECTORY_WRITES = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make anything
_REFER = 1 << 13  # ABI 2: rename or link between folders
_SCOPE_SIGNAL = 1 << 1  # ABI 6: no signal to a process outside the sandbox


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall(*args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(*args)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def landlock_abi() -> int:
    """The Landlock version this Linux kernel offers (0: none, or not Linux)."""
    if platform.system() != "Linux":
        return 0
    try:
        return _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except OSError:
        return 0


def restrict_writes(writable: list[str]) -> int:
    """Forbid this process (and what it starts) to write anywhere but beneath the ``writable``
    paths, and — Landlock ABI 6 and later — to signal a process outside; return the Landlock ABI
    used (0: not available, nothing restricted)."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    handled = _WRITE_FILE | _DIRECTORY_WRITES | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled, 0, _SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        for path in writable:
            if not os.path.exists(path):
                continue
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = handled if os.path.isdir(path) else handled & (_WRITE_FILE | _TRUNCATE)
                rule = _PathBeneath(allowed, fd)
                _syscall(
                    _ADD_RULE,
                    ctypes.c_int(ruleset),
                    ctypes.c_int(_RULE_PATH_BENEATH),
                    ctypes.byref(rule),
                    ctypes.c_uint32(0),
                )
            finally:
                os.close(fd)
        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # Landlock requires it
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


# --------------------------------------------------------------------------- ending a run


def marked_processes(value: str) -> list[int]:
    """The ids of the processes whose environment holds ``MARKER=value`` (this user's; not this one)."""
    needle = f"{MARKER}={value}".encode() + b"\0"
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            pid = int(environ.parent.name)
            if pid != os.getpid() and needle in environ.read_bytes() + b"\0":
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def kill_marked(value: str, rounds: int = 5) -> list[int]:
    """Kill (SIGKILL) every process of the run ``value``, again until none is left (a process may
    fork while it is being killed); return the ids killed."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = marked_processes(value)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        time.sleep(0.1)
    return killed


# --------------------------------------------------------------------------- the grading process


def run_notebook(folder: Path) -> int:
    """The grading process of one submission (``python -m course_lib.sandbox run FOLDER``, started by
    ``grading``): run ``FOLDER/graded.ipynb`` cell by cell in the confined kernel ``course-grading``
    (``FOLDER/job.json``: the time limit, the working folder), with the kernel's own output sent
    nowhere, then write ``FOLDER/executed.ipynb`` and ``FOLDER/result.json`` (why it stopped, if it
    did). It imports no PyTorch: it only drives the kernel."""
    import json
    import subprocess

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    job = json.loads((folder / "job.json").read_text())
    notebook = nbformat.read(folder / "graded.ipynb", as_version=4)
    deadline = time.monotonic() + job["timeout"]
    client = NotebookClient(
        notebook,
        kernel_name="course-grading",
        allow_errors=True,
        store_widget_state=False,
        shutdown_kernel="immediate",
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        resources={"metadata": {"path": job["work"]}},
    )
    stopped = ""
    try:
        with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=job["work"]):
            for index, cell in enumerate(notebook.cells):
                if time.monotonic() > deadline:
                    stopped = f"the notebook ran past its time limit ({job['timeout']} s)"
                    break
                client.execute_cell(cell, index)
    except CellTimeoutError:
        stopped = f"the notebook ran past its time limit ({job['timeout']} s)"
    except DeadKernelError:
        stopped = "the kernel died (out of memory, or the notebook ended it)"
    except Exception as err:  # the kernel would not start, or nbclient gave up
        stopped = f"{type(err).__name__}: {err}"
    nbformat.write(notebook, folder / "executed.ipynb")
    (folder / "result.json").write_text(json.dumps({"stopped": stopped}))
    return 0


# --------------------------------------------------------------------------- the launcher

USAGE = (
    "usage: python -m course_lib.sandbox [--memory BYTES] [--processes N] [--writable PATH]... -- COMMAND ...\n"
    "       python -m course_lib.sandbox run FOLDER"
)


def main(argv: list[str] | None = None) -> int:
    """Confine this process as the options say, then become ``COMMAND`` (``os.execv``)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"] and len(argv) == 2:
        return run_notebook(Path(argv[1]))
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(USAGE, file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    memory = processes = None
    writable: list[str] = []
    while options:
        key, value, *options = options
        if key == "--memory":
            memory = int(value) or None
        elif key == "--processes":
            processes = int(value) or None
        elif key == "--writable":
            writable.append(value)
        else:
            print(USAGE, file=sys.stderr)
            return 2
    limit_resources(memory, processes)
    if writable:
        restrict_writes(writable)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
