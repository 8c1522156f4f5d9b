// The few calls that glibc declares only under _GNU_SOURCE. Defining it in the
// header would change how glibc's own types (fd_set, sockaddr arguments)
// import into Swift, so it is defined here alone.
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CEpollShim.h"

int cepoll_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

int cepoll_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int cepoll_dup3(int fd, int target, int flags) { return dup3(fd, target, flags); }
