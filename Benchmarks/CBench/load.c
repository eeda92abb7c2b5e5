// load.c: the benchmark's producer and consumer (see cbench.h for the topology).
//
// Both load threads use edge-triggered epoll and always drain a descriptor until EAGAIN before
// waiting again, which is what makes edge-triggering safe. A shared eventfd in both epoll sets
// lets cbench_load_destroy stop the threads even when a relay failed and EOF never arrives.
#define _GNU_SOURCE
#include "cbench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CONSUMER_BUF (256 * 1024)
#define PRODUCER_CHUNK (64 * 1024)  // one default pipe's worth per write(2)
#define MAX_EVENTS 256
#define STOP_TAG UINT64_MAX          // epoll tag of the stop eventfd

struct cbench_load {
    int n;
    uint64_t bytes;        // per stream
    int producer_kind;     // CBENCH_PRODUCER_*
    int cpu;               // -1: no pinning
    int *wr;               // producer side: pipe write ends (closed once fully written)
    uint64_t *written;     // producer progress per stream
    int *cons;             // consumer side of each socketpair (closed at EOF)
    uint64_t *received;    // consumer progress per stream
    int stop_fd;           // eventfd: written by destroy to stop both threads
    pid_t head_pid;
    pthread_t producer, consumer;
    int producer_started, consumer_started, joined;
    int64_t start_ns, end_ns;
    int producer_failed;   // written by the producer thread only
    int consumer_failed;   // written by the consumer thread only: a stream errored or ended short
};

static void close_fd(int *fd) {
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

// 1000 streams need > 4000 descriptors (pipe + socketpair each, plus epoll sets), more than the
// usual soft limit of 1024. Raise the soft limit to the hard maximum only when needed.
static int ensure_nofile(int needed) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= (rlim_t)needed) return 0;
    if (rl.rlim_cur == RLIM_INFINITY) return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)needed) {
        errno = EMFILE;
        return -1;
    }
    return 0;
}

// One stream: pipe (read end non-blocking for the relay; write end non-blocking for the producer
// thread but blocking for a child, which expects an ordinary stdout) and a socketpair.
static int make_stream(cbench_load *l, int i, int *src, int *dst) {
    int p[2], s[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0 ||
        (l->producer_kind == CBENCH_PRODUCER_THREAD && fcntl(p[1], F_SETFL, O_NONBLOCK) != 0) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) != 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        errno = e;
        return -1;
    }
    *src = p[0];
    l->wr[i] = p[1];
    *dst = s[0];
    l->cons[i] = s[1];
    return 0;
}

cbench_load *cbench_load_create(int n, uint64_t bytes_per_stream, int producer, int *src_fds,
                                int *dst_fds) {
    int child = producer == CBENCH_PRODUCER_HEAD || producer == CBENCH_PRODUCER_DD;
    if (n <= 0 || (child && n != 1) || (!child && producer != CBENCH_PRODUCER_THREAD) ||
        (producer == CBENCH_PRODUCER_DD && bytes_per_stream % 65536 != 0) || !src_fds || !dst_fds) {
        errno = EINVAL;
        return NULL;
    }
    if (ensure_nofile(4 * n + 64) != 0) return NULL;
    cbench_load *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->n = n;
    l->bytes = bytes_per_stream;
    l->producer_kind = producer;
    l->cpu = -1;
    l->head_pid = -1;
    l->stop_fd = -1;
    l->wr = malloc(sizeof(int) * (size_t)n);
    l->cons = malloc(sizeof(int) * (size_t)n);
    l->written = calloc((size_t)n, sizeof(uint64_t));
    l->received = calloc((size_t)n, sizeof(uint64_t));
    if (!l->wr || !l->cons || !l->written || !l->received) {
        l->n = 0;  // nothing to close yet
        cbench_load_destroy(l);
        errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < n; i++) l->wr[i] = l->cons[i] = src_fds[i] = dst_fds[i] = -1;
    l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->stop_fd < 0) goto fail;
    for (int i = 0; i < n; i++)
        if (make_stream(l, i, &src_fds[i], &dst_fds[i]) != 0) goto fail;
    return l;
fail: {
    int e = errno;
    for (int i = 0; i < n; i++) {
        if (src_fds[i] >= 0) close(src_fds[i]);
        if (dst_fds[i] >= 0) close(dst_fds[i]);
        src_fds[i] = dst_fds[i] = -1;
    }
    cbench_load_destroy(l);
    errno = e;
    return NULL;
}
}

int cbench_load_set_cpu(cbench_load *l, int cpu) {
    if (l->producer_started || l->consumer_started || l->head_pid > 0) return -EBUSY;
    l->cpu = cpu;
    return 0;
}

// Load threads must never die of SIGPIPE when a relay closes its end early; with SIGPIPE blocked
// the write just fails with EPIPE (the pending thread-directed signal dies with the thread).
static void thread_setup(cbench_load *l) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (l->cpu >= 0) cbench_pin_self(l->cpu);
}

// Builds an edge-triggered epoll set over fds[0..n) (tag = index) plus the stop eventfd.
static int epoll_over(cbench_load *l, const int *fds, uint32_t events) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l->stop_fd, &ev) != 0) goto fail;
    for (int i = 0; i < l->n; i++) {
        ev.events = events | EPOLLET;
        ev.data.u64 = (uint64_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) goto fail;
    }
    return ep;
fail:
    close(ep);
    return -1;
}

static int epoll_wait_retry(int ep, struct epoll_event *evs) {
    for (;;) {
        int k = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (k >= 0 || errno != EINTR) return k;
    }
}

// Bytes per write(2) of the producer thread: PRODUCER_CHUNK, or $CBENCH_WRITE_SIZE (1..64 KiB)
// to model a chatty writer (a process printing lines) rather than a bulk one.
static size_t producer_write_size(void) {
    const char *env = getenv("CBENCH_WRITE_SIZE");
    long v = env ? strtol(env, NULL, 10) : 0;
    return (v > 0 && v <= PRODUCER_CHUNK) ? (size_t)v : PRODUCER_CHUNK;
}

// Writes zeros into stream i until done (returns 1) or the pipe is full (returns 0).
static int produce(cbench_load *l, int i) {
    static const char zeros[PRODUCER_CHUNK];
    static size_t chunk;
    if (chunk == 0) chunk = producer_write_size();
    while (l->written[i] < l->bytes) {
        uint64_t left = l->bytes - l->written[i];
        ssize_t w = write(l->wr[i], zeros, left < chunk ? (size_t)left : chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            if (!l->producer_failed)  // one line, not one per stream, when a relay bails out
                fprintf(stderr, "cbench producer: write stream %d: %s\n", i, strerror(errno));
            l->producer_failed = 1;
            break;
        }
        l->written[i] += (uint64_t)w;
    }
    close_fd(&l->wr[i]);  // EOF for the relay
    return 1;
}

static void *producer_main(void *arg) {
    cbench_load *l = arg;
    thread_setup(l);
    int ep = epoll_over(l, l->wr, EPOLLOUT);
    if (ep < 0) {
        fprintf(stderr, "cbench producer: epoll: %s\n", strerror(errno));
        l->producer_failed = 1;
        return NULL;
    }
    struct epoll_event evs[MAX_EVENTS];
    int remaining = l->n;
    // Edge-triggered: each stream is written until EAGAIN first, then only on EPOLLOUT edges.
    for (int i = 0; i < l->n; i++) remaining -= produce(l, i);
    while (remaining > 0) {
        int k = epoll_wait_retry(ep, evs);
        if (k < 0) {
            fprintf(stderr, "cbench producer: epoll_wait: %s\n", strerror(errno));
            l->producer_failed = 1;
            break;
        }
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u64 == STOP_TAG) goto out;
            int i = (int)evs[j].data.u64;
            if (l->wr[i] >= 0) remaining -= produce(l, i);
        }
    }
out:
    close(ep);
    return NULL;
}

// Reads stream i until EAGAIN (returns 0) or EOF/error (returns 1, stream closed).
static int consume(cbench_load *l, int i, char *buf) {
    for (;;) {
        ssize_t r = read(l->cons[i], buf, CONSUMER_BUF);
        if (r > 0) {
            l->received[i] += (uint64_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return 0;
        if (r < 0 && !l->consumer_failed)
            fprintf(stderr, "cbench consumer: read stream %d: %s\n", i, strerror(errno));
        if (r < 0 || l->received[i] != l->bytes) l->consumer_failed = 1;
        close_fd(&l->cons[i]);
        return 1;
    }
}

static void *consumer_main(void *arg) {
    cbench_load *l = arg;
    thread_setup(l);
    char *buf = malloc(CONSUMER_BUF);
    int ep = buf ? epoll_over(l, l->cons, EPOLLIN | EPOLLRDHUP) : -1;
    if (ep < 0) {
        fprintf(stderr, "cbench consumer: setup: %s\n", strerror(errno));
        l->consumer_failed = 1;
        free(buf);
        return NULL;
    }
    struct epoll_event evs[MAX_EVENTS];
    int remaining = l->n;
    while (remaining > 0) {
        int k = epoll_wait_retry(ep, evs);
        if (k < 0) {
            fprintf(stderr, "cbench consumer: epoll_wait: %s\n", strerror(errno));
            l->consumer_failed = 1;
            break;
        }
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u64 == STOP_TAG) goto out;
            int i = (int)evs[j].data.u64;
            if (l->cons[i] >= 0) remaining -= consume(l, i, buf);
        }
    }
    l->end_ns = cbench_monotonic_ns();
out:
    close(ep);
    free(buf);
    return NULL;
}

// Spawns the producer child (`head -c <bytes> /dev/zero`, or `busybox dd` with 64 KiB blocks)
// with stdout = the pipe's write end and stderr = /dev/null (dd's record counts), then drops our
// copy of the write end so the relay sees EOF exactly when the child exits.
static int spawn_head(cbench_load *l) {
    char count[48];
    char *head_argv[] = {"head", "-c", count, "/dev/zero", NULL};
    char *dd_argv[] = {"busybox", "dd", "if=/dev/zero", "bs=65536", count, NULL};
    char **argv = l->producer_kind == CBENCH_PRODUCER_DD ? dd_argv : head_argv;
    if (l->producer_kind == CBENCH_PRODUCER_DD)
        snprintf(count, sizeof(count), "count=%llu", (unsigned long long)(l->bytes / 65536));
    else
        snprintf(count, sizeof(count), "%llu", (unsigned long long)l->bytes);
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return -rc;
    rc = posix_spawn_file_actions_adddup2(&fa, l->wr[0], STDOUT_FILENO);  // clears CLOEXEC
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (rc == 0) rc = posix_spawnp(&l->head_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        l->head_pid = -1;
        fprintf(stderr, "cbench: posix_spawnp %s: %s\n", argv[0], strerror(rc));
        return -rc;
    }
    if (l->cpu >= 0) {  // the child starts unpinned for a few microseconds; negligible for 2 GiB
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(l->cpu, &set);
        sched_setaffinity(l->head_pid, sizeof(set), &set);
    }
    close_fd(&l->wr[0]);
    return 0;
}

int cbench_load_start(cbench_load *l) {
    if (l->consumer_started) return -EALREADY;
    l->start_ns = cbench_monotonic_ns();
    int rc = pthread_create(&l->consumer, NULL, consumer_main, l);
    if (rc != 0) return -rc;
    l->consumer_started = 1;
    if (l->producer_kind != CBENCH_PRODUCER_THREAD) return spawn_head(l);
    rc = pthread_create(&l->producer, NULL, producer_main, l);
    if (rc != 0) return -rc;
    l->producer_started = 1;
    return 0;
}

static void join_threads(cbench_load *l) {
    if (l->joined) return;
    if (l->consumer_started) pthread_join(l->consumer, NULL);
    if (l->producer_started) pthread_join(l->producer, NULL);
    l->joined = 1;
}

int64_t cbench_load_wait(cbench_load *l, int64_t *elapsed_ns) {
    if (!l->consumer_started) return -1;
    join_threads(l);
    uint64_t total = 0;
    for (int i = 0; i < l->n; i++) total += l->received[i];
    if (elapsed_ns) *elapsed_ns = l->end_ns - l->start_ns;
    if (l->producer_failed || l->consumer_failed || l->end_ns == 0) return -1;
    if (total != (uint64_t)l->n * l->bytes) return -1;
    return (int64_t)total;
}

void cbench_load_destroy(cbench_load *l) {
    if (!l) return;
    if (l->stop_fd >= 0 && !l->joined) {
        uint64_t one = 1;
        while (write(l->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    join_threads(l);
    if (l->head_pid > 0) {
        close_fd(&l->wr[0]);  // head may still block on a full pipe: let it get EPIPE/SIGPIPE
        kill(l->head_pid, SIGTERM);
        while (waitpid(l->head_pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    for (int i = 0; l->wr && l->cons && i < l->n; i++) {
        close_fd(&l->wr[i]);
        close_fd(&l->cons[i]);
    }
    close_fd(&l->stop_fd);
    free(l->wr);
    free(l->cons);
    free(l->written);
    free(l->received);
    free(l);
}
