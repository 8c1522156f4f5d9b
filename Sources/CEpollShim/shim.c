// The few calls that glibc declares only under _GNU_SOURCE. Defining it in the
// header would change how glibc's own types (fd_set, sockaddr arguments)
// import into Swift, so it is defined here alone.
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CEpollShim.h"

int cepoll_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

int cepoll_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int cepoll_dup3(int fd, int target, int flags) { return dup3(fd, target, flags); }

static volatile sig_atomic_t cepoll_forward_fd = -1;

static void cepoll_forward_handler(int signo) {
    int saved = errno;  // the interrupted code may be about to read errno
    unsigned char byte = (unsigned char)signo;
    int fd = cepoll_forward_fd;
    if (fd >= 0) (void)write(fd, &byte, 1);  // a full pipe drops the byte: one pending is enough
    errno = saved;
}

int cepoll_signal_forward(int signo, int fd) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = cepoll_forward_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    cepoll_forward_fd = fd;
    return sigaction(signo, &action, NULL);
}

int cepoll_signal_default(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}

int cepoll_signal_ignore(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}
