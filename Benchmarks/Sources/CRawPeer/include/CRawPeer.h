// The epoll and socket declarations swift-raw-upper-echo needs, which Swift's
// Glibc module does not expose (epoll) or declares only under _GNU_SOURCE
// (accept4, wrapped in raw_peer.c).
#pragma once
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/// `accept4(fd, NULL, NULL, flags)`.
int raw_peer_accept4(int fd, int flags);
