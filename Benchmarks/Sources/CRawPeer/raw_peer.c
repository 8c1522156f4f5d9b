#define _GNU_SOURCE 1
#include <stddef.h>
#include <sys/socket.h>

#include "CRawPeer.h"

int raw_peer_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }
