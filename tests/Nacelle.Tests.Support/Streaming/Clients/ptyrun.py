#!/usr/bin/python3
"""The test backend's terminal: runs a command on a new pty and relays it to this program's stdio.

    ptyrun.py SIZE_FILE ROWS COLS COMMAND...

Starts with a ROWS x COLS window; on SIGUSR1 reads "ROWS COLS" from SIZE_FILE and resizes the terminal (the command
gets SIGWINCH). End of stdin becomes ^D on the terminal. Exits with the command's code (128+N for signal N).
"""
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios


def main():
    size_file, rows, cols, command = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    def set_size(r, c):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))

    def on_resize(_signal, _frame):
        try:
            with open(size_file) as f:
                r, c = f.read().split()
            set_size(int(r), int(c))
        except (OSError, ValueError):
            pass

    set_size(rows, cols)
    signal.signal(signal.SIGUSR1, on_resize)
    stdin_open = True
    while True:
        readable, _, _ = select.select([master] + ([0] if stdin_open else []), [], [])
        if master in readable:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command's side of the terminal is closed
                data = b""
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
        if stdin_open and 0 in readable:
            data = os.read(0, 65536)
            if data:
                os.write(master, data)
            else:
                stdin_open = False
                os.write(master, b"\x04")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
