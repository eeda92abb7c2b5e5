// relay_uring.c: io_uring relay (liburing), measured against the epoll baselines in relays.c.
//
// Modes ($CBENCH_URING_MODE), all on one ring driven by the calling thread:
//   poll  IORING_OP_SPLICE src->dst with the fds left O_NONBLOCK. The kernel always punts splice
//         to io-wq (REQ_F_FORCE_ASYNC: splice has no nowait/poll path), where it fails fast with
//         -EAGAIN instead of blocking; we then re-arm with a linked POLL_ADD(src, IN) ->
//         POLL_ADD(dst, OUT) -> SPLICE chain, the polls flagged CQE_SKIP_SUCCESS.
//   block the same SPLICE, but O_NONBLOCK cleared on src/dst: every splice that has to wait
//         parks an io-wq worker thread, so n waiting streams cost up to n kernel threads.
//   rw    IORING_OP_READ (pipe, 64 KiB per-stream buffer) then IORING_OP_SEND (socket). Both
//         support nowait issue + io_uring's internal poll, so no io-wq at all (one copy).
// Default: poll. block is up to ~15% faster with few streams but costs one kernel thread per
// waiting stream (1000 for 1000 idle streams) and needs blocking fds; poll keeps io-wq at 2-3
// workers and wins at 1000 streams. rw pays a CQE round trip per 64 KiB and is the slowest.
//
// Invariant that makes teardown simple: an open stream has exactly one "primary" request in
// flight (SPLICE, READ or SEND; a re-arm chain ends in one). Poll CQEs are only looked at for
// their error; once the primary CQE is reaped nothing of the stream is left in the kernel, so
// finishing it (shutdown + close) can never race a request using the fds.
#define _GNU_SOURCE
#include "cbench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SPLICE_LEN (1u << 20)
#define RW_CHUNK (64 * 1024)  // default pipe capacity: one read empties a full pipe
#define SAMPLE_NS 20000000    // thread-count sampling period (20 ms)

enum mode { MODE_POLL, MODE_BLOCK, MODE_RW };
static const char *const mode_names[] = {"poll", "block", "rw"};

// user_data = index << 3 | kind
enum kind { K_SPLICE, K_READ, K_SEND, K_POLL };

struct ustream {
    int src, dst;
    int open;
    int poll_err;     // error of a failed re-arm poll (the primary then reports -ECANCELED)
    char *buf;        // rw: bytes read but not yet sent are buf[off..len)
    unsigned off, len;
};

struct relay {
    struct io_uring ring;
    enum mode mode;
    struct ustream *st;
    char *bufs;       // rw: n * RW_CHUNK, one slice per stream
    int remaining, first_err;
};

static struct cbench_uring_stats last_stats;

void cbench_uring_last_stats(struct cbench_uring_stats *out) { *out = last_stats; }

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

// io-wq workers are threads of this process named iou-wrk-<tid>; their CPU time is not in the
// relay thread's clock. Lists the ones alive now with their CPU via the per-thread CPU clock id
// of each tid (same thread group, so clock_gettime allows it). Returns the count (*out malloc'd,
// may be NULL), or 0 on failure.
struct wcpu {
    pid_t tid;
    int64_t ns;
};

static int scan_iowq(struct wcpu **out) {
    *out = NULL;
    int cnt = 0, cap = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[64], comm[32] = "";
        pid_t tid = (pid_t)atoi(e->d_name);
        snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        int ok = fgets(comm, sizeof(comm), f) != NULL;
        fclose(f);
        if (!ok || strncmp(comm, "iou-wrk", 7) != 0) continue;
        clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6);  // MAKE_THREAD_CPUCLOCK(tid, SCHED)
        struct timespec ts;
        if (clock_gettime(clk, &ts) != 0) continue;  // exited meanwhile
        if (cnt == cap) {
            struct wcpu *g = realloc(*out, sizeof(**out) * (size_t)(cap = cap ? 2 * cap : 64));
            if (!g) break;
            *out = g;
        }
        (*out)[cnt++] = (struct wcpu){tid, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec};
    }
    closedir(d);
    return cnt;
}

// io-wq workers outlive a ring (idle ones linger ~5 s, one stays parked for the task), so the
// worker CPU of a call is: now - at start, per worker alive at the end (tids matched; quadratic,
// fine for a few thousand). Workers that exited during the call are missed (lower bound).
static void iowq_delta(const struct wcpu *base, int nbase) {
    struct wcpu *now;
    int n = scan_iowq(&now);
    last_stats.iowq_workers = n;
    for (int i = 0; i < n; i++) {
        int64_t ns = now[i].ns;
        for (int j = 0; j < nbase; j++)
            if (base[j].tid == now[i].tid) ns -= base[j].ns;
        last_stats.iowq_cpu_ns += ns;
    }
    free(now);
}

// Returns a free SQE, flushing a full SQ to the kernel first, or NULL when the kernel will not
// take SQEs right now (-EBUSY: CQ overflow backlog). The SQ holds 3 SQEs per stream up to 4096,
// so this flush only happens beyond ~1365 streams; NULL then fails that one stream cleanly.
static struct io_uring_sqe *get_sqe(struct relay *r) {
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&r->ring))) {
        int rc = io_uring_submit(&r->ring);
        if (rc < 0 && rc != -EINTR) return NULL;
    }
    return sqe;
}

static uint64_t tag(int i, enum kind k) { return ((uint64_t)i << 3) | (uint64_t)k; }

static int queue_primary(struct relay *r, int i, unsigned sqe_flags) {
    struct ustream *s = &r->st[i];
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe) return -EBUSY;
    switch (r->mode) {
    case MODE_POLL:
    case MODE_BLOCK: {
        unsigned fl = SPLICE_F_MOVE | (r->mode == MODE_POLL ? SPLICE_F_NONBLOCK : 0);
        io_uring_prep_splice(sqe, s->src, -1, s->dst, -1, SPLICE_LEN, fl);
        io_uring_sqe_set_data64(sqe, tag(i, K_SPLICE));
        break;
    }
    case MODE_RW:
        if (s->off < s->len) {
            // MSG_NOSIGNAL: a vanished consumer is EPIPE, not SIGPIPE.
            io_uring_prep_send(sqe, s->dst, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, tag(i, K_SEND));
        } else {
            // Offset -1: "current position", the only valid one for a pipe.
            io_uring_prep_read(sqe, s->src, s->buf, RW_CHUNK, (uint64_t)-1);
            io_uring_sqe_set_data64(sqe, tag(i, K_READ));
        }
        break;
    }
    sqe->flags |= (unsigned char)sqe_flags;
    return 0;
}

static int queue_poll(struct relay *r, int i, int fd, unsigned events) {
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe) return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data64(sqe, tag(i, K_POLL));
    // Linked into the primary; a successful poll posts nothing (one CQE per re-arm, not three).
    sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    return 0;
}

// After -EAGAIN: wait until the side(s) the request needs are ready, then retry it. splice cannot
// tell an empty pipe from a full socket, so it waits for both (a ready side completes at once).
// Note: the chain's SQEs must not be split by a mid-chain SQ flush; get_sqe only flushes when
// the SQ is full, so we make room for all three first.
static int queue_rearm(struct relay *r, int i) {
    struct ustream *s = &r->st[i];
    if (io_uring_sq_space_left(&r->ring) < 3) io_uring_submit(&r->ring);
    if (io_uring_sq_space_left(&r->ring) < 3) return -EBUSY;  // a split chain would hang
    int need_src = r->mode != MODE_RW || s->off == s->len;
    int need_dst = r->mode != MODE_RW || s->off < s->len;
    int rc = 0;
    if (need_src) rc = queue_poll(r, i, s->src, POLLIN);
    if (!rc && need_dst) rc = queue_poll(r, i, s->dst, POLLOUT);
    if (!rc) rc = queue_primary(r, i, 0);
    return rc;
}

static void finish(struct relay *r, int i, int err) {
    struct ustream *s = &r->st[i];
    if (!err) shutdown(s->dst, SHUT_WR);
    close(s->src);
    close(s->dst);
    s->open = 0;
    r->remaining--;
    if (err && !r->first_err) r->first_err = err;
}

// Handles the CQE of stream i's primary request: queues the next request or finishes the stream.
static void on_primary(struct relay *r, int i, enum kind k, int res) {
    struct ustream *s = &r->st[i];
    int rc = 0;
    if (res == -EAGAIN) {
        rc = queue_rearm(r, i);
    } else if (res == -EINTR) {
        rc = queue_primary(r, i, 0);
    } else if (res < 0) {
        rc = (res == -ECANCELED && s->poll_err) ? s->poll_err : res;
    } else if (k == K_SEND) {
        s->off += (unsigned)res;  // a short send leaves the rest for the next SEND
        if (s->off == s->len) s->off = s->len = 0;
        rc = queue_primary(r, i, 0);
    } else if (res == 0) {  // splice/read: empty pipe without writers = EOF
        finish(r, i, 0);
        return;
    } else {
        if (k == K_READ) s->len = (unsigned)res;
        rc = queue_primary(r, i, 0);
    }
    if (rc) finish(r, i, rc);
}

static int event_loop(struct relay *r) {
    int64_t next_sample = cbench_monotonic_ns() + SAMPLE_NS;
    while (r->remaining > 0) {
        int rc = io_uring_submit_and_wait(&r->ring, 1);
        // -EINTR: a signal; -EBUSY/-EAGAIN: CQ backlog (overflow) or resource shortage; both
        // clear by reaping, which also lets liburing flush overflowed CQEs on the next enter.
        if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) return rc;
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&r->ring, head, cqe) {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int i = (int)(ud >> 3);
            enum kind k = (enum kind)(ud & 7);
            if (!r->st[i].open) continue;  // cannot happen for primaries (see invariant)
            if (k == K_POLL) {
                if (cqe->res < 0 && !r->st[i].poll_err) r->st[i].poll_err = cqe->res;
                continue;
            }
            on_primary(r, i, k, cqe->res);
        }
        io_uring_cq_advance(&r->ring, seen);
        int64_t now = cbench_monotonic_ns();
        if (now >= next_sample) {
            int t = count_tasks();
            if (t > last_stats.tasks_max) last_stats.tasks_max = t;
            next_sample = now + SAMPLE_NS;
        }
    }
    return 0;
}

static enum mode mode_from_env(void) {
    const char *e = getenv("CBENCH_URING_MODE");
    for (int m = 0; e && m < 3; m++)
        if (strcmp(e, mode_names[m]) == 0) return (enum mode)m;
    return MODE_POLL;
}

static unsigned pow2_at_least(unsigned v) {
    unsigned p = 64;
    while (p < v && p < (1u << 16)) p <<= 1;
    return p;
}

// Ring setup: DEFER_TASKRUN + SINGLE_ISSUER (6.1+) run completion work only when we wait, in
// our context, which saves IPIs/wakeups (a plain ring measured ~15-40% slower here); fall back to a plain ring on older kernels. The CQ is
// sized for every CQE that can be outstanding (a failed re-arm posts up to 3 per stream), so
// overflow is not expected; the loop handles it anyway.
static int setup_ring(struct relay *r, int n) {
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = pow2_at_least(4u * (unsigned)n + 16);
    unsigned sq = pow2_at_least(3u * (unsigned)n > 4096 ? 4096 : 3u * (unsigned)n);
    int rc = io_uring_queue_init_params(sq, &r->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = pow2_at_least(4u * (unsigned)n + 16);
        rc = io_uring_queue_init_params(sq, &r->ring, &p);
    }
    return rc;
}

static int clear_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return -errno;
    return 0;
}

int cbench_relay_uring(int n, const int *src, const int *dst, int64_t *cpu_ns) {
    memset(&last_stats, 0, sizeof(last_stats));
    struct wcpu *iowq0;
    int niowq0 = scan_iowq(&iowq0);
    int64_t cpu0 = cbench_thread_cpu_ns();
    struct relay r = {.mode = mode_from_env(), .remaining = 0};
    last_stats.mode = mode_names[r.mode];
    last_stats.tasks_before = last_stats.tasks_max = count_tasks();
    int ring_ok = 0, rc = 0;
    r.st = calloc((size_t)(n > 0 ? n : 1), sizeof(*r.st));
    if (r.mode == MODE_RW && n > 0) r.bufs = malloc((size_t)n * RW_CHUNK);
    if (!r.st || (r.mode == MODE_RW && !r.bufs)) {
        rc = -ENOMEM;
        for (int i = 0; i < n; i++) {  // we own the fds whatever happens
            close(src[i]);
            close(dst[i]);
        }
        goto out;
    }
    for (int i = 0; i < n; i++)
        r.st[i] = (struct ustream){.src = src[i], .dst = dst[i], .open = 1,
                                   .buf = r.bufs ? r.bufs + (size_t)i * RW_CHUNK : NULL};
    r.remaining = n;
    rc = setup_ring(&r, n);
    ring_ok = rc == 0;
    for (int i = 0; !rc && i < n; i++) {
        if (r.mode == MODE_BLOCK) rc = clear_nonblock(src[i]);
        if (!rc && r.mode == MODE_BLOCK) rc = clear_nonblock(dst[i]);
        if (!rc) rc = queue_primary(&r, i, 0);
    }
    if (!rc) rc = event_loop(&r);
out:
    if (cpu_ns) *cpu_ns = cbench_thread_cpu_ns() - cpu0;  // before the /proc scan below
    if (ring_ok) {
        iowq_delta(iowq0, niowq0);
        // Cancels whatever is still in flight (only after a fatal error) before fds go away;
        // io_uring holds its own file references, so the order is not a correctness issue.
        io_uring_queue_exit(&r.ring);
    }
    for (int i = 0; r.st && i < n; i++)
        if (r.st[i].open) finish(&r, i, rc ? rc : -EIO);
    if (rc == 0) rc = r.first_err;
    free(iowq0);
    free(r.bufs);
    free(r.st);
    return rc;
}
