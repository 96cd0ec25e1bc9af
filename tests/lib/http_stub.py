"""A minimal HTTP/1.1 responder for tests that stand in for a REST API: one request per
connection, answered by a handler and then closed."""
import socket
import threading


class HttpStub:
    """Listens on 127.0.0.1 (any port). For each connection it reads one request (head, and the
    body by Content-Length) and calls handle(conn, method, target, body: bytes), which writes
    the whole answer. `port` and `host` (a /ip4/.../tcp/... multiaddr) say where it listens."""

    def __init__(self, handle, backlog=8):
        self.handle = handle
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.host = f"/ip4/127.0.0.1/tcp/{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode(errors="replace").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                parts = lines[0].split(" ")
                if len(parts) < 2:
                    continue
                self.handle(conn, parts[0], parts[1], body)

    def close(self):
        self.sock.close()
