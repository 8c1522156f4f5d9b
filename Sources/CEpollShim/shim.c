// The few calls that glibc declares only under _GNU_SOURCE. Defining it in the
// header would change how glibc's own types (fd_set, sockaddr arguments)
// import into Swift, so it is defined here alone.
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CEpollShim.h"

int cepoll_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

int cepoll_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int cepoll_dup3(int fd, int target, int flags) { return dup3(fd, target, flags); }

// One write end per signal number, stored as fd + 1 so that the zeroed
// static array means "none". Read by the handler, so sig_atomic_t.
#define CEPOLL_SIGNALS 65
static volatile sig_atomic_t cepoll_forward_fds[CEPOLL_SIGNALS];

static void cepoll_forward_handler(int signo) {
    int saved = errno;  // the interrupted code may be about to read errno
    unsigned char byte = (unsigned char)signo;
    int fd = (signo > 0 && signo < CEPOLL_SIGNALS) ? (int)cepoll_forward_fds[signo] - 1 : -1;
    if (fd >= 0) (void)write(fd, &byte, 1);  // a full pipe drops the byte: one pending is enough
    errno = saved;
}

int cepoll_signal_forward(int signo, int fd) {
    if (signo <= 0 || signo >= CEPOLL_SIGNALS || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = cepoll_forward_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sig_atomic_t previous = cepoll_forward_fds[signo];
    cepoll_forward_fds[signo] = fd + 1;
    if (sigaction(signo, &action, NULL) != 0) {
        cepoll_forward_fds[signo] = previous;
        return -1;
    }
    return 0;
}

// Restores the default action of `signo`. Returns 0, or -1 with errno set.
static int cepoll_signal_default(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}

int cepoll_signal_release(int signo, int fd) {
    if (signo <= 0 || signo >= CEPOLL_SIGNALS || cepoll_forward_fds[signo] != fd + 1) return 0;
    int result = cepoll_signal_default(signo);
    cepoll_forward_fds[signo] = 0;
    return result;
}

int cepoll_signal_ignore(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}

// One byte per thread: its address names the calling thread. Unlike
// pthread_self(), which glibc declares `const` (so a compiler may reuse one
// call's result across a thread switch inside the same function), this is
// read anew on every call.
static _Thread_local char cepoll_thread_marker;

const void *cepoll_current_thread_token(void) { return &cepoll_thread_marker; }

int cepoll_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int cepoll_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof(truncated) - 1);
    truncated[sizeof(truncated) - 1] = '\0';
    return pthread_setname_np(pthread_self(), truncated);
}
