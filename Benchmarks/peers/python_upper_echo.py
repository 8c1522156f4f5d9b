"""The lesson's server (day34-2, select.epoll), with its defects fixed and its
prints removed, as a benchmark peer.

Fixes: the client socket is closed (not the socket class); flags are tested
with &, not ==; each client has its own pending bytes and partial sends keep
the rest; ERR/HUP close the client; reading pauses while a reply is pending.

Usage: python3 python_upper_echo.py [PORT]   (0 picks a free port)
"""
import select
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(511)
server.setblocking(False)
print(f"listening on 127.0.0.1:{server.getsockname()[1]} (python-epoll)", flush=True)

epoll = select.epoll()
epoll.register(server.fileno(), select.EPOLLIN)
sockets = {}
pending = {}


def drop(fd):
    epoll.unregister(fd)
    sockets.pop(fd).close()
    pending.pop(fd, None)


while True:
    for fd, event in epoll.poll():
        if fd == server.fileno():
            while True:
                try:
                    client, _ = server.accept()
                except BlockingIOError:
                    break
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as every peer here
                sockets[client.fileno()] = client
                epoll.register(client.fileno(), select.EPOLLIN)
            continue
        sock = sockets.get(fd)
        if sock is None:
            continue
        try:
            if event & select.EPOLLOUT:
                data = pending[fd]
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    continue
                if sent < len(data):
                    pending[fd] = data[sent:]
                else:
                    del pending[fd]
                    epoll.modify(fd, select.EPOLLIN)
            elif event & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    drop(fd)
                    continue
                data = data.upper()
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    pending[fd] = data[sent:]
                    epoll.modify(fd, select.EPOLLOUT)
        except OSError:
            drop(fd)
