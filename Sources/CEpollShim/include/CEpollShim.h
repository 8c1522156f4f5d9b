// The kernel interfaces that `import Glibc` does not expose to Swift on Linux:
// epoll, eventfd, timerfd, accept4, pipe2, dup3, and the FD_* macros of select(2);
// it also gathers the libc headers the Syscalls module needs (netdb.h for getaddrinfo, ...).
// Everything here is a thin, inline forwarder; the policy (EINTR, errors)
// lives in the Swift `Syscalls` module.
#ifndef CEPOLLSHIM_H
#define CEPOLLSHIM_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <linux/filter.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

/// The size of one `fd_set` in descriptors (1024 on Linux).
static const int CEPOLL_FD_SETSIZE = FD_SETSIZE;

/// Builds an `epoll_event` (packed on x86_64) from its two fields.
static inline struct epoll_event cepoll_event_make(uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return ev;
}

/// The event mask of the `index`-th event of an array filled by `epoll_wait`.
static inline uint32_t cepoll_event_events(const struct epoll_event *events, int index) {
    return events[index].events;
}

/// The 64-bit user data of the `index`-th event of an array filled by `epoll_wait`.
static inline uint64_t cepoll_event_data(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

/// `FD_ZERO`: empties a descriptor set.
/// Makes listening TCP socket `fd` drop every segment that opens a
/// connection (SYN without ACK), through a classic BPF socket filter on the
/// TCP header's flags, and keep every other: no new handshake starts (the
/// client retransmits its SYN, and meets a closed port once the listener
/// closes), while handshakes already under way complete and are queued for
/// `accept`. Returns 0, or -1 with errno set.
static inline int cepoll_drop_new_connections(int fd) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),            // the TCP header's flags byte
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),         // SYN | ACK
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),   // SYN alone?
        BPF_STMT(BPF_RET | BPF_K, 0),                      // drop it
        BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF),             // keep the rest whole
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program));
}

/// The bytes received on socket `fd` and not yet read (`ioctl(FIONREAD)`,
/// which Swift cannot call: `ioctl` is variadic). Returns the count, or -1
/// with errno set.
static inline int cepoll_unread_bytes(int fd) {
    int count = 0;
    return ioctl(fd, FIONREAD, &count) == 0 ? count : -1;
}

/// How far the reader and writer of `fd` have come, as one number that
/// changes when either moves a byte (progress.c says how); `*unread` gets the
/// bytes waiting to be read (for a listening socket: the connections waiting
/// to be accepted, the queue that is then the mark). Returns 0, or -1 with errno EBADF when `fd` is
/// not open; a descriptor that cannot tell (neither a socket nor a pipe)
/// always gives the same mark.
int cepoll_progress_mark(int fd, int64_t *mark, int64_t *unread);

/// The inode number of the file open at `fd` (`fstat`'s `st_ino`).
/// Returns 0, or -1 with errno set.
static inline int cepoll_inode(int fd, uint64_t *inode) {
    struct stat status;
    if (fstat(fd, &status) != 0) return -1;
    *inode = (uint64_t)status.st_ino;
    return 0;
}

static inline void cepoll_fd_zero(fd_set *set) { FD_ZERO(set); }

/// `FD_SET`: adds `fd` (which must be in 0..<FD_SETSIZE) to a descriptor set.
static inline void cepoll_fd_set(int fd, fd_set *set) { FD_SET(fd, set); }

/// `FD_ISSET`: whether `fd` (which must be in 0..<FD_SETSIZE) is in a descriptor set.
static inline int cepoll_fd_isset(int fd, const fd_set *set) { return FD_ISSET(fd, set); }

/// `errno` of the calling thread.
static inline int cepoll_errno(void) { return errno; }

/// Sets `errno` of the calling thread.
static inline void cepoll_set_errno(int value) { errno = value; }

/// `fcntl(fd, cmd)` without the variadic argument, which Swift cannot call.
static inline int cepoll_fcntl0(int fd, int cmd) { return fcntl(fd, cmd); }

/// `fcntl(fd, cmd, arg)` with an integer argument.
static inline int cepoll_fcntl1(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }

/// `open(path, flags, mode)` without the variadic argument.
static inline int cepoll_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }

/// `bind` with a plain `struct sockaddr *` (glibc's transparent union does not import).
static inline int cepoll_bind(int fd, const struct sockaddr *address, socklen_t length) {
    return bind(fd, address, length);
}

/// `connect` with a plain `struct sockaddr *`.
static inline int cepoll_connect(int fd, const struct sockaddr *address, socklen_t length) {
    return connect(fd, address, length);
}

/// `accept4` without the peer's address (defined in shim.c, which needs _GNU_SOURCE).
int cepoll_accept4(int fd, int flags);

/// `pipe2` (defined in shim.c, which needs _GNU_SOURCE).
int cepoll_pipe2(int fds[2], int flags);

/// `dup3` (defined in shim.c, which needs _GNU_SOURCE).
int cepoll_dup3(int fd, int target, int flags);

/// `getsockname` with a plain `struct sockaddr *`.
static inline int cepoll_getsockname(int fd, struct sockaddr *address, socklen_t *length) {
    return getsockname(fd, address, length);
}

/// Installs a handler for `signo` that writes the signal number, as one
/// byte, to `fd` (the write end of a non-blocking pipe): the self-pipe trick.
/// The handler does nothing else, so all real work happens on the event loop,
/// never in signal context. Each signal has its own descriptor; forwarding
/// a signal again replaces it. Returns 0, or -1 with errno set (EINVAL for a
/// signal number out of range).
int cepoll_signal_forward(int signo, int fd);

/// Restores the default action of `signo` if it is still forwarded to `fd`;
/// otherwise (forwarded elsewhere since) leaves it alone. Returns 0, or -1
/// with errno set.
int cepoll_signal_release(int signo, int fd);

/// Sets `signo` to be ignored (used for SIGPIPE). Returns 0, or -1 with errno set.
int cepoll_signal_ignore(int signo);

/// A token unique to the calling thread while it lives (the address of a
/// `_Thread_local` byte); defined in shim.c.
const void *cepoll_current_thread_token(void);

/// How many CPUs the calling thread may run on (its `sched_getaffinity`
/// mask, as `taskset` sets it); 0 if the mask cannot be read.
int cepoll_affinity_cpu_count(void);

/// Names the calling thread (at most 15 bytes are kept), as `top -H` and
/// `/proc/self/task/TID/comm` show it. Returns 0 or an errno value.
int cepoll_set_thread_name(const char *name);

#endif
