#!/usr/bin/env python3
"""Copies standard input to standard output, waiting whenever the output would block.

test-all.sh writes everything it runs through this relay. A CI runner's pipe
or terminal is one open file shared by every process the tests start; a
process that leaves it non-blocking (O_NONBLOCK is a property of the open
file, not of the descriptor: Node.js killed with SIGKILL does, for one) makes
every later write fail with EAGAIN while the runner lags, and bash's `set -e`
then ends a suite silently at an `echo`. Behind the relay the suites write to
a pipe of our own, 1 MiB deep, and only the relay meets the runner's file: it
waits for it to drain (poll) instead of failing.

Ends at end of input, or with status 1 when the output is closed or fails.
SIGINT is ignored so that a Ctrl-C still lets the relay show the suites'
last lines; it ends when they do.
"""

import errno
import fcntl
import os
import select
import signal
import sys

PIPE_BYTES = 1 << 20


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()
        except InterruptedError:
            continue


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    src, dst = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        fcntl.fcntl(src, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # not a pipe, or above /proc/sys/fs/pipe-max-size: the default depth
    while True:
        try:
            data = os.read(src, 65536)
        except InterruptedError:
            continue
        if not data:
            return 0
        try:
            write_all(dst, data)
        except OSError as err:
            if err.errno != errno.EPIPE:
                print(f"output-relay: cannot write the tests' output: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
