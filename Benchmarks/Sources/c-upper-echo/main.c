// c-upper-echo: the practical ceiling for the lesson's service, a minimal C
// epoll server. One thread, level-triggered epoll, one reusable read buffer
// upper-cased in place, writes sent at once; only an unwritten tail is
// copied into the connection's buffer, write interest only while it is
// non-empty, and reading pauses above 64 KiB queued (as upper-echo does).
//
// Usage: c-upper-echo [PORT]   (0 picks a free port)
// Prints: listening on 127.0.0.1:PORT (c-epoll)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)

struct pending {
    char *data;
    size_t start, length, capacity;
    int paused;
    uint32_t interest;  // what epoll watches now: epoll_ctl only on a change
};

static struct pending *pendings;
static int max_fds;
static int epfd;

// Branch-free, so that -O3 vectorizes it: the same transform upper-echo uses.
static void upper(char *p, ssize_t n) {
    unsigned char *bytes = (unsigned char *)p;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = bytes[i];
        bytes[i] = (unsigned char)(c - (((unsigned char)(c - 'a') < 26) << 5));
    }
}

static void set_interest(int fd) {
    struct pending *q = &pendings[fd];
    uint32_t interest = (q->paused ? 0 : EPOLLIN) | (q->length ? EPOLLOUT : 0);
    if (interest == q->interest) return;
    q->interest = interest;
    struct epoll_event ev = {.events = interest, .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void drop(int fd) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(pendings[fd].data);
    memset(&pendings[fd], 0, sizeof pendings[fd]);
}

static void queue_tail(int fd, const char *p, size_t n) {
    struct pending *q = &pendings[fd];
    if (q->start + q->length + n > q->capacity) {
        memmove(q->data, q->data + q->start, q->length);
        q->start = 0;
        if (q->length + n > q->capacity) {
            q->capacity = (q->length + n) * 2;
            q->data = realloc(q->data, q->capacity);
        }
    }
    memcpy(q->data + q->start + q->length, p, n);
    q->length += n;
}

static void on_writable(int fd) {
    struct pending *q = &pendings[fd];
    while (q->length) {
        ssize_t sent = send(fd, q->data + q->start, q->length, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN) break;
            drop(fd);
            return;
        }
        q->start += (size_t)sent;
        q->length -= (size_t)sent;
    }
    if (!q->length) q->start = 0;
    if (q->paused && q->length <= LOW_WATER) q->paused = 0;
    set_interest(fd);
}

static void on_readable(int fd, char *buffer) {
    ssize_t n = recv(fd, buffer, READ_SIZE, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        drop(fd);
        return;
    }
    if (n < 0) return;
    upper(buffer, n);
    struct pending *q = &pendings[fd];
    ssize_t sent = 0;
    if (!q->length) {
        sent = send(fd, buffer, (size_t)n, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EAGAIN) {
                drop(fd);
                return;
            }
            sent = 0;
        }
        if (sent == n) return;
    }
    queue_tail(fd, buffer + sent, (size_t)(n - sent));
    if (q->length >= HIGH_WATER) q->paused = 1;
    set_interest(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8000;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    max_fds = (int)limit.rlim_cur;
    pendings = calloc((size_t)max_fds, sizeof *pendings);

    int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (bind(server, (struct sockaddr *)&address, sizeof address) || listen(server, 511)) {
        fprintf(stderr, "c-upper-echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    socklen_t length = sizeof address;
    getsockname(server, (struct sockaddr *)&address, &length);
    printf("listening on 127.0.0.1:%d (c-epoll)\n", ntohs(address.sin_port));
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = server};
    epoll_ctl(epfd, EPOLL_CTL_ADD, server, &ev);
    static char buffer[READ_SIZE];
    struct epoll_event events[1024];
    for (;;) {
        int count = epoll_wait(epfd, events, 1024, -1);
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == server) {
                for (int k = 0; k < 64; k++) {
                    int client = accept4(server, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (client < 0) break;
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = client};
                    pendings[client].interest = EPOLLIN;
                    epoll_ctl(epfd, EPOLL_CTL_ADD, client, &cev);
                }
                continue;
            }
            uint32_t e = events[i].events;
            if (e & EPOLLOUT) on_writable(fd);
            if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !pendings[fd].paused) on_readable(fd, buffer);
        }
    }
}
