// How far a descriptor's reader and writer have come, for the event loop's
// busy-loop diagnostic. Its own file because glibc's <netinet/tcp.h> (which
// the shim's header includes) has an older `struct tcp_info` without the
// byte counts, and <linux/tcp.h>, which has them, cannot be included beside it.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/tcp.h>

// The listening state of `tcpi_state` (include/net/tcp_states.h in the kernel).
enum { PROGRESS_TCP_LISTEN = 10 };

int cepoll_progress_mark(int fd, int64_t *mark, int64_t *unread) {
    int waiting = 0;
    int counted = ioctl(fd, FIONREAD, &waiting) == 0;
    if (!counted) {
        if (errno == EBADF) return -1;
        waiting = 0;
    }
    *unread = waiting;
    struct tcp_info info;
    socklen_t length = sizeof info;
    size_t needed = offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof info.tcpi_bytes_sent;
    int got = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0;
    if (got && info.tcpi_state == PROGRESS_TCP_LISTEN) {
        // A listening socket: its accept queue is what its handler drains.
        *unread = info.tcpi_unacked;
        *mark = info.tcpi_unacked;
    } else if (got && length >= needed) {
        // Bytes the application consumed plus bytes it wrote: both only grow,
        // so the sum changes exactly when the handler read or wrote.
        *mark = (int64_t)(info.tcpi_bytes_received - (uint64_t)waiting)
            + (int64_t)(info.tcpi_bytes_sent + info.tcpi_notsent_bytes);
    } else if (counted) {
        // A pipe, a Unix or UDP socket: the bytes waiting are all there is to watch.
        *mark = -(int64_t)waiting;
    } else {
        // An eventfd, a timerfd, a signalfd...: nothing to measure.
        return 1;
    }
    return 0;
}
