"""Keep TensorFlow's start-up lines off the command line's stderr (shown with ``-v``).

TensorFlow's C++ core writes its start-up notices straight to file descriptor 2, whatever
``TF_CPP_MIN_LOG_LEVEL`` says::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795995037.190932    6962 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1795995037.335410    6962 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...
    To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow ...

Switching oneDNN off would silence one of them but change the numbers, so instead :class:`StderrFilter`
puts a pipe behind descriptor 2 and forwards everything except these lines (absl INFO and WARNING lines,
and the two lines above). Errors (``E...``/``F...`` lines), Python tracebacks and the project's own
messages pass unchanged; text that cannot start such a line is forwarded at once, so progress bars
drawn with ``\\r`` stay live.

>>> is_noise("I0000 00:00:1795995037.190932    6962 port.cc:153] oneDNN custom operations are on.")
True
>>> is_noise("E0000 00:00:1795995037.190932    6962 cuda.cc:1] failed"), is_noise("error: bad input")
(False, False)
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import threading

__all__ = ["is_noise", "StderrFilter", "quiet_tensorflow", "add_verbose_flag"]

_BANNERS = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            "To enable the following instructions:")
_ABSL = re.compile(r"[IW]\d{4} \d+:\d+:\d+\.\d+\s+\d+ \S+:\d+\] ")
_ABSL_START = re.compile(r"[IW](\d{1,4}( ([\d:.]+(\s+(\d+( (\S+)?)?)?)?)?)?)?")


def is_noise(line: str) -> bool:
    """True for a TensorFlow/absl start-up line (INFO or WARNING) that the command line hides."""
    line = line.rstrip("\r\n")
    return bool(_ABSL.match(line)) or any(line.startswith(b) for b in _BANNERS)


def _may_become_noise(partial: str) -> bool:
    """Could this start of a line still turn into a noise line? (then wait for the rest of it)"""
    if not partial:
        return True
    if any(b.startswith(partial) or partial.startswith(b) for b in _BANNERS):
        return True
    return bool(_ABSL.match(partial) or _ABSL_START.fullmatch(partial))


class StderrFilter:
    """Filter file descriptor 2 of this process (and of children started meanwhile) through :func:`is_noise`.

    >>> with StderrFilter():           # doctest: +SKIP
    ...     import tensorflow          # its start-up lines do not reach the terminal
    """

    def __init__(self, fd: int = 2):
        self.fd = fd
        self._saved = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(self.fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="stderr-filter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, self.fd)        # closes our pipe's write end: the pump reads to its end and stops
        self._thread.join(timeout)            # (a child still holding the pipe keeps it open: do not wait forever)
        os.close(self._saved)
        self._saved = None

    def _write(self, data: bytes) -> None:
        while data:
            try:
                n = os.write(self._saved, data)
            except OSError:
                return
            data = data[n:]

    def _pump(self, read_end: int) -> None:
        pending = b""          # the start of a line that may still become a noise line
        passing = False        # the current line was already judged harmless and forwarded in part
        try:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                pending += chunk
                out = []
                while pending:
                    nl = pending.find(b"\n")
                    if passing:
                        if nl < 0:
                            out.append(pending)
                            pending = b""
                        else:
                            out.append(pending[:nl + 1])
                            pending, passing = pending[nl + 1:], False
                        continue
                    if nl >= 0:
                        line, pending = pending[:nl + 1], pending[nl + 1:]
                        if not is_noise(line.decode("utf-8", "replace")):
                            out.append(line)
                        continue
                    if _may_become_noise(pending.decode("utf-8", "replace")):
                        break          # wait for more of this line
                    out.append(pending)
                    pending, passing = b"", True
                if out:
                    self._write(b"".join(out))
            if pending and not is_noise(pending.decode("utf-8", "replace")):
                self._write(pending)
        finally:
            os.close(read_end)


class quiet_tensorflow:
    """Context manager: :class:`StderrFilter` unless ``verbose``; a no-op when descriptor 2 cannot be filtered."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self._filter = None

    def __enter__(self):
        if not self.verbose:
            try:
                self._filter = StderrFilter()
                self._filter.start()
            except OSError:
                self._filter = None
        return self

    def __exit__(self, *exc):
        if self._filter is not None:
            self._filter.stop()
        return False


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` on ``parser`` and on every sub-command, so it may come before or after the command."""
    help_ = "show TensorFlow's start-up lines (hidden by default)"
    parser.add_argument("-v", "--verbose", action="store_true", help=help_)
    todo = [parser]
    while todo:
        for action in todo.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    if not any("-v" in a.option_strings for a in sub._actions):
                        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                         help=help_)
                    todo.append(sub)
