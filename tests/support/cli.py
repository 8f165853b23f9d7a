"""Running ``ipa-ext`` from a test: in-process through ``ipa_ext.cli.main(argv)`` (the default), or as a
real child process where the process itself is under test (signals, exit status of a child, a terminal)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from .paths import ROOT

CLEARED_ENV = ("IPA_EXT_DISABLE_PLUGINS",)
"""Variables a run starts without, as a user's shell would (a test may set them through ``env``)."""


@dataclass
class CliResult:
    """What a run of ``ipa-ext`` left: like :class:`subprocess.CompletedProcess`."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = field(default=None, repr=False)
    """An exception that escaped ``main`` (a subprocess would have printed its traceback)."""


class CliTimeout(BaseException):
    """Raised in the main thread when a run outlives its ``timeout`` (not an ``Exception``: ``main``
    must not turn it into an exit code)."""


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 120) -> CliResult:
    """``ipa-ext ARGS`` in this process, in ``cwd`` (default: the repository) with ``env`` added to the
    environment. Output is captured at the file descriptors, so child processes' output is included.
    A run that outlives ``timeout`` seconds (a hang detector) fails the test."""
    argv = [str(a) for a in args]
    main = main_function()
    exc: BaseException | None = None
    with (_environment(env), _chdir(cwd or ROOT), _restored_process_state(), _captured() as captured,
          _deadline(timeout, argv)):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse: usage errors, --help, --version
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else _print_exit(stop))
        except Exception as escaped:  # what the interpreter does with an uncaught exception
            exc = escaped
            traceback.print_exc()
            code = 1
    return CliResult(argv, code, captured.stdout, captured.stderr, exc)


def spawn_cli(*args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """``ipa-ext ARGS`` as a child process (the installed console script, else ``python -m ipa_ext``)."""
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True,
                          env=child_env(env), cwd=cwd or ROOT, timeout=timeout)


def default_sigint() -> None:
    """A ``preexec_fn`` for a child that a test interrupts the way a terminal's Ctrl-C would.

    A child inherits an ignored SIGINT (a test run started in the background by a
    non-interactive shell has one), and Python then never raises ``KeyboardInterrupt``;
    a process started from a terminal has the default disposition, which this restores."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_command() -> list[str]:
    """The argv prefix that starts ``ipa-ext`` in a child process."""
    exe = Path(sys.executable).with_name("ipa-ext")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ipa_ext"]


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`CLEARED_ENV`, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    full.update(env or {})
    return full


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``ipa-ext ARGV`` through ``main`` with pytest's ``capsys``: exit code, stdout, stderr
    (argparse's ``SystemExit`` propagates, for tests of usage errors)."""
    code = main_function()([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *needles: str) -> str:
    """The one ``ipa-ext: error:`` line of ``err`` (asserted: exactly one line, no traceback), holding ``needles``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ipa-ext: error: "), err
    assert "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def main_function():
    """``ipa_ext.cli.main``, imported when first used."""
    from ipa_ext.cli import main

    return main


def assert_one_line_error(proc, *needles: str) -> None:
    """A user error: non-zero exit, one line on stderr naming what is wrong, no traceback."""
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ipa-ext: error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _print_exit(stop: SystemExit) -> int:
    print(stop.code, file=sys.stderr)  # sys.exit("message"): the interpreter prints it, exit 1
    return 1


@dataclass
class _Captured:
    stdout: str = ""
    stderr: str = ""


@contextlib.contextmanager
def _captured() -> Iterator[_Captured]:
    """Both streams at the descriptors (fds 1 and 2 onto temporary files, ``sys.stdout``/``sys.stderr``
    writing through to them), so Python's and child processes' output keep their order."""
    got = _Captured()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = os.dup(1), os.dup(2)
        saved_streams = sys.stdout, sys.stderr
        os.dup2(out_f.fileno(), 1)
        os.dup2(err_f.fileno(), 2)
        sys.stdout = _text_on(1)
        sys.stderr = _text_on(2)
        try:
            yield got
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(ValueError, OSError):
                    stream.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((1, 2), saved_fds):
                os.dup2(saved, fd)
                os.close(saved)
            got.stdout, got.stderr = _read(out_f), _read(err_f)


def _text_on(fd: int) -> io.TextIOWrapper:
    raw = open(fd, "wb", buffering=0, closefd=False)  # unbuffered: in order with a child's output
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def _read(f) -> str:
    f.seek(0)
    return f.read().decode("utf-8", errors="backslashreplace")


@contextlib.contextmanager
def _deadline(timeout: float, argv: list[str]) -> Iterator[None]:
    def expire(signum, frame):
        raise CliTimeout(f"ipa-ext {' '.join(argv)}: still running after {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    for k in CLEARED_ENV:
        os.environ.pop(k, None)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _chdir(path: str | Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def _restored_process_state() -> Iterator[None]:
    """What a command may change for the rest of its process: signal handlers and the ``ipa_ext`` logger."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    logger = logging.getLogger("ipa_ext")
    level, log_handlers = logger.level, list(logger.handlers)
    try:
        yield
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        logger.setLevel(level)
        logger.handlers[:] = log_handlers
