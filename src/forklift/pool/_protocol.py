"""The wire format between the pool (parent) and its workers: framed messages on a socket.

Every message starts with a 9-byte header: one kind byte and a 64-bit number (a task id, a
shared-object token or a worker id, depending on the kind), followed by a payload. Small
messages go as one frame (header + payload); a payload of ``LARGE_PAYLOAD`` bytes or more goes
as a second frame so it is never copied just to glue a header on, and the kind byte carries
``LARGE_FLAG`` to say so. Each side has one sender per connection at a time, so the two frames
of a large message are never interleaved with another message.

Imports only the standard library: the worker and the fork server load this module before
anything else.
"""

from __future__ import annotations

import socket
import struct
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds, sendfds
from typing import Final

__all__ = [
    "AUTHKEY",
    "DEFINE",
    "DEFINE_SHARED",
    "EXIT",
    "FORGET",
    "HELLO",
    "INIT",
    "INIT_FAILED",
    "RESULT_ERROR",
    "RESULT_OK",
    "RESULT_SHARED",
    "RETIRE",
    "TASK",
    "receive",
    "send",
]

# parent -> worker
TASK: Final = ord("T")  # number = task id, payload = pickled (function, args, kwargs)
DEFINE: Final = ord("D")  # number = token, payload = pickled shared object
# number = token, payload = layout; followed by a memfd passed with SCM_RIGHTS (see .sharing)
DEFINE_SHARED: Final = ord("S")
FORGET: Final = ord("F")  # payload = pickled list of tokens to drop
# payload = the caller's multiprocessing authkey, raw; first of all, so that Manager proxies in
# INIT's initargs and in tasks can talk to the caller's managers (see .._launcher)
AUTHKEY: Final = ord("A")
INIT: Final = ord("I")  # payload = pickled WorkerOptions (see .options)
EXIT: Final = ord("X")  # finish what was received, then exit
# worker -> parent
HELLO: Final = ord("H")  # number = worker id, payload = pid (8 bytes)
RESULT_OK: Final = ord("R")  # number = task id, payload = pickled result
# number = task id, payload = layout; followed by a memfd holding a large result (see .sharing)
RESULT_SHARED: Final = ord("M")
RESULT_ERROR: Final = ord("E")  # number = task id, payload = pickled (error, traceback text)
RETIRE: Final = ord("Q")  # the worker asks to be retired (memory growth)
INIT_FAILED: Final = ord("N")  # payload = traceback text of the initializer's error

LARGE_FLAG: Final = 0x80
LARGE_PAYLOAD: Final = 1 << 20
_HEADER = struct.Struct("<BQ")
HEADER_SIZE: Final = _HEADER.size


def send(connection: Connection, kind: int, number: int = 0, payload: bytes = b"") -> None:
    """Send one message; the caller makes sure nobody else sends on ``connection`` meanwhile."""
    if len(payload) < LARGE_PAYLOAD:
        connection.send_bytes(_HEADER.pack(kind, number) + payload)
    else:
        connection.send_bytes(_HEADER.pack(kind | LARGE_FLAG, number))
        connection.send_bytes(payload)


def send_fd(connection: Connection, fd: int) -> None:
    """Pass a file descriptor to the peer (right after a message that announces it)."""
    with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sendfds(sock, [fd])


def receive_fd(connection: Connection) -> int:
    """Receive a descriptor passed with :func:`send_fd`."""
    with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        (fd,) = recvfds(sock, 1)
    return fd


def receive(connection: Connection) -> tuple[int, int, bytes | memoryview]:
    """Receive one message as ``(kind, number, payload)``; EOFError when the peer is gone."""
    frame = connection.recv_bytes()
    kind, number = _HEADER.unpack_from(frame)
    if kind & LARGE_FLAG:
        return kind & ~LARGE_FLAG, number, connection.recv_bytes()
    return kind, number, memoryview(frame)[HEADER_SIZE:]
