"""The zero-copy reference for whole-study WADO: a bound for what a server sends here.

A minimal HTTP/1.1 server that answers the bench's whole-study retrievals by sending each
study's stored files (the corpus files, as both servers store them) with ``sendfile``, between
the multipart part heads: no index, no authorization, no DICOM work, and no byte of an
instance through user space. One process per usable core, each with its own SO_REUSEPORT
socket (as granian's workers, so connections are spread over the processes the same way),
a thread per connection.

Measured by the same wrk run as the servers, its MB/s is what a server that does nothing
but move the stored bytes reaches on this machine with the load generator on the same cores:
the kernel's page-cache-to-socket path and wrk's reading of the bytes. Where the WADO target
(Dicomite >= 1.5x Orthanc) asks for more than this, a DICOM server would have to beat it.

Run as a script by the bench: ``python _wado_reference.py PORT STUDIES_JSON PROCESSES``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from _dicom_base import READY_TIMEOUT_S, REFERENCE_NAME, STOP_GRACE_S, Server
from _processes import HOST, RESULTS_DIR, free_port, running_process, wait_ready

if TYPE_CHECKING:
    from dicom_corpus import Corpus

BOUNDARY = "sendfile-reference-boundary"
PART_HEAD = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
CLOSE_DELIMITER = f"\r\n--{BOUNDARY}--\r\n".encode()
MAX_HEAD_BYTES = 64 * 1024
READY_PATH = "/ready"


def study_files(corpus: Corpus) -> dict[str, list[str]]:
    """Each study's UID and the absolute paths of its files, in the corpus's order."""
    return {
        study.study_uid: [str(corpus.folder / i.path) for s in study.series for i in s.instances]
        for study in corpus.studies
    }


def start_reference(
    stack: contextlib.ExitStack, corpus: Corpus, work: Path, processes: int
) -> Server:
    """Start the reference on a free port (stopped by `stack`) and wait until it answers."""
    studies = work / "reference-studies.json"
    studies.write_text(json.dumps(study_files(corpus)))
    port = free_port()
    command = [sys.executable, str(Path(__file__)), str(port), str(studies), str(processes)]
    log_path = RESULTS_DIR / f"{REFERENCE_NAME}.log"
    print(f"\n[{REFERENCE_NAME}] starting: {' '.join(command)}  (log: {log_path})", flush=True)
    proc = stack.enter_context(
        running_process(
            command, dict(os.environ), log_path, cwd=Path(__file__).parent, grace_s=STOP_GRACE_S
        )
    )
    origin = f"http://{HOST}:{port}"
    wait_ready(proc, origin + READY_PATH, log_path, READY_TIMEOUT_S)
    return Server(
        name=REFERENCE_NAME,
        config=f"minimal zero-copy server: stored files sent with sendfile, {processes}"
        " processes (as many as Dicomite's workers), plain HTTP; whole-study WADO only",
        origin=origin,
        root="",
        proc=proc,
        log_path=log_path,
        kinds=("wado",),
    )


# ------------------------------------------------------------------------ the server


class Study:
    def __init__(self, files: list[str]) -> None:
        self.files = [(path, os.path.getsize(path)) for path in files]
        length = sum(len(PART_HEAD) + size for _, size in self.files)
        # between parts: the CRLF that belongs to the next delimiter (RFC 2046 §5.1.1)
        length += 2 * (len(self.files) - 1) + len(CLOSE_DELIMITER)
        self.head = (
            "HTTP/1.1 200 OK\r\n"
            f'Content-Type: multipart/related; type="application/dicom"; boundary={BOUNDARY}\r\n'
            f"Content-Length: {length}\r\n\r\n"
        ).encode()


def send_study(conn: socket.socket, study: Study) -> None:
    """The response head, then per part its head (MSG_MORE: sent with the file's first bytes,
    not as a segment of its own) and the file by ``os.sendfile``."""
    conn.send(study.head, socket.MSG_MORE)
    for index, (path, size) in enumerate(study.files):
        conn.sendall(PART_HEAD if index == 0 else b"\r\n" + PART_HEAD, socket.MSG_MORE)
        with open(path, "rb") as file:
            offset = 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), file.fileno(), offset, size - offset)
    conn.sendall(CLOSE_DELIMITER)


def answer(conn: socket.socket, status: str, text: str) -> None:
    body = text.encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body)


def serve_connection(studies: dict[str, Study], conn: socket.socket) -> None:
    """Keep-alive GETs (no request bodies), one after another, until the client closes."""
    buffer = b""
    with conn, contextlib.suppress(OSError):
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(MAX_HEAD_BYTES)
                if not data or len(buffer) > MAX_HEAD_BYTES:
                    return
                buffer += data
            request, buffer = buffer.split(b"\r\n\r\n", 1)
            target = request.split(b" ", 2)[1].decode("latin-1").split("?")[0]
            study = studies.get(target.removeprefix("/studies/"))
            if study is not None:
                send_study(conn, study)
            elif target == READY_PATH:
                answer(conn, "200 OK", "ready")
            else:
                answer(conn, "404 Not Found", "no such study")


def serve(port: int, studies: dict[str, Study]) -> None:
    """Accept on this process's own SO_REUSEPORT socket; a thread per connection (the threads
    wait in ``sendfile`` and ``recv``, outside the GIL)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by connections
    listener.bind((HOST, port))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(studies, conn), daemon=True).start()


def main(argv: list[str]) -> None:
    port, studies_file, processes = int(argv[0]), Path(argv[1]), int(argv[2])
    studies = {uid: Study(files) for uid, files in json.loads(studies_file.read_text()).items()}
    for _ in range(processes - 1):
        if os.fork() == 0:  # children share the process group, so the bench stops them all
            break
    serve(port, studies)


if __name__ == "__main__":
    main(sys.argv[1:])
