// relays.c: the two C baseline relays the Swift reactor is measured against.
//
// Both share one driver (run_relay): a single edge-triggered epoll set in which every stream's src
// (EPOLLIN) and dst (EPOLLOUT) are registered once, up front. Edge-triggering with both directions
// registered costs no epoll_ctl calls per backpressure episode; the price is the usual ET rule:
// a stream is pumped until EAGAIN before we wait again, so no readiness change can be missed.
// A per-stream `wait` hint lets the driver skip wakeups for the direction a stream is not blocked
// on (e.g. the consumer draining the socket while we are waiting for the producer).
#define _GNU_SOURCE
#include "cbench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPLICE_LEN (1 << 20)  // upper bound per splice(2); a pipe holds 64 KiB by default anyway
#define RW_CHUNK (64 * 1024)
#define MAX_EVENTS 256

// What a stream waits for after its last EAGAIN. WAIT_ANY: unknown (splice cannot tell whether
// the pipe was empty or the socket full), so events from both directions pump it.
enum wait_hint { WAIT_ANY, WAIT_SRC, WAIT_DST };

struct stream {
    int src, dst;
    int open;
    enum wait_hint wait;
    int not_socket;   // dst rejected send(2): fall back to write(2)
    char *buf;        // rw only: bytes a short write left behind (lazily allocated)
    size_t off, len;  // pending bytes are buf[off..len)
};

// Pumps one stream until it would block. Returns 0 (would block, s->wait set), 1 (src EOF and
// everything written) or -errno.
typedef int (*pump_fn)(struct stream *s, char *shared);

static int pump_splice(struct stream *s, char *shared) {
    (void)shared;
    for (;;) {
        ssize_t r = splice(s->src, NULL, s->dst, NULL, SPLICE_LEN, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (r > 0) continue;
        if (r == 0) return 1;  // pipe empty and no writers left
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            s->wait = WAIT_ANY;  // empty pipe or full socket: either edge may unblock us
            return 0;
        }
        return -errno;
    }
}

// Writes as much of p[0..len) as dst accepts. Returns bytes written (possibly short: the socket is
// full) or -errno. MSG_NOSIGNAL turns a vanished consumer into EPIPE instead of SIGPIPE.
static ssize_t write_some(struct stream *s, const char *p, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = s->not_socket ? write(s->dst, p + done, len - done)
                                  : send(s->dst, p + done, len - done, MSG_NOSIGNAL);
        if (w >= 0) {
            done += (size_t)w;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == ENOTSOCK && !s->not_socket) {
            s->not_socket = 1;
            continue;
        }
        if (errno == EAGAIN) break;
        return -errno;
    }
    return (ssize_t)done;
}

// Flushes the stream's pending bytes. Returns 0 when all are out, 1 when dst is full, or -errno.
static int flush_pending(struct stream *s) {
    if (s->off == s->len) return 0;
    ssize_t w = write_some(s, s->buf + s->off, s->len - s->off);
    if (w < 0) return (int)w;
    s->off += (size_t)w;
    if (s->off < s->len) return 1;
    s->off = s->len = 0;
    return 0;
}

static int pump_rw(struct stream *s, char *shared) {
    for (;;) {
        int f = flush_pending(s);
        if (f < 0) return f;
        if (f > 0) {
            s->wait = WAIT_DST;
            return 0;
        }
        ssize_t r = read(s->src, shared, RW_CHUNK);
        if (r == 0) return 1;
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            s->wait = WAIT_SRC;
            return 0;
        }
        // Fast path: straight from the shared buffer. Only a short write costs a private copy.
        ssize_t w = write_some(s, shared, (size_t)r);
        if (w < 0) return (int)w;
        if (w < r) {
            if (!s->buf && !(s->buf = malloc(RW_CHUNK))) return -ENOMEM;
            memcpy(s->buf, shared + w, (size_t)(r - w));
            s->off = 0;
            s->len = (size_t)(r - w);
            s->wait = WAIT_DST;
            return 0;
        }
    }
}

// Ends a stream: after a clean EOF the consumer gets a FIN via shutdown(SHUT_WR) (close alone
// would do too, but shutdown also covers a dst that someone else still holds a duplicate of).
static void finish(struct stream *s, int eof) {
    if (eof) shutdown(s->dst, SHUT_WR);
    close(s->src);
    close(s->dst);
    free(s->buf);
    s->buf = NULL;
    s->open = 0;
}

// A dst edge is worthless to a stream that waits for its producer, and a src edge to one that
// waits for socket space (rw only: splice reports WAIT_ANY). Errors/hangups always pump so the
// failure is observed.
static int worth_pumping(const struct stream *s, int is_dst, uint32_t events) {
    if (events & (EPOLLERR | EPOLLHUP)) return 1;
    if (s->wait == WAIT_ANY) return 1;
    return is_dst ? s->wait == WAIT_DST : s->wait == WAIT_SRC;
}

static int register_streams(int ep, struct stream *st, int n) {
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = (uint64_t)i << 1};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, st[i].src, &ev) != 0) return -errno;
        ev.events = EPOLLOUT | EPOLLET;
        ev.data.u64 = ((uint64_t)i << 1) | 1;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, st[i].dst, &ev) != 0) return -errno;
    }
    return 0;
}

static int event_loop(int ep, struct stream *st, int n, pump_fn pump, char *shared) {
    struct epoll_event evs[MAX_EVENTS];
    int first_err = 0;
    int remaining = n;
    while (remaining > 0) {
        int k = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        for (int j = 0; j < k; j++) {
            struct stream *s = &st[evs[j].data.u64 >> 1];
            int is_dst = (int)(evs[j].data.u64 & 1);
            if (!s->open || !worth_pumping(s, is_dst, evs[j].events)) continue;
            int r = pump(s, shared);
            if (r == 0) continue;
            if (r < 0 && !first_err) first_err = r;
            finish(s, r > 0);
            remaining--;
        }
    }
    return first_err;
}

// Common driver: owns and always closes all 2n descriptors, whatever happens.
static int run_relay(int n, const int *src, const int *dst, int64_t *cpu_ns, pump_fn pump,
                     size_t shared_len) {
    int64_t cpu0 = cbench_thread_cpu_ns();
    int rc = 0;
    int ep = -1;
    char *shared = NULL;
    struct stream *st = calloc((size_t)(n > 0 ? n : 1), sizeof(*st));
    if (!st) {
        rc = -ENOMEM;
        for (int i = 0; i < n; i++) {
            close(src[i]);
            close(dst[i]);
        }
        goto out;
    }
    for (int i = 0; i < n; i++) st[i] = (struct stream){.src = src[i], .dst = dst[i], .open = 1};
    if (shared_len && !(shared = malloc(shared_len))) rc = -ENOMEM;
    if (!rc && (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) rc = -errno;
    if (!rc) rc = register_streams(ep, st, n);
    if (!rc) rc = event_loop(ep, st, n, pump, shared);
    for (int i = 0; i < n; i++)
        if (st[i].open) finish(&st[i], 0);
out:
    if (ep >= 0) close(ep);
    free(shared);
    free(st);
    if (cpu_ns) *cpu_ns = cbench_thread_cpu_ns() - cpu0;
    return rc;
}

int cbench_relay_splice(int n, const int *src, const int *dst, int64_t *cpu_ns) {
    return run_relay(n, src, dst, cpu_ns, pump_splice, 0);
}

int cbench_relay_rw(int n, const int *src, const int *dst, int64_t *cpu_ns) {
    return run_relay(n, src, dst, cpu_ns, pump_rw, RW_CHUNK);
}
