// cbench: C-side load generator and baseline relays for the stdio-relay benchmarks.
//
// The benchmark models the guest agent's hot path: a container process writes its stdout into a
// pipe, and the agent relays those bytes to the host's vsock stream. Here the "process" is either a
// real `head -c N /dev/zero` child or an in-process producer thread, and the "host" is a consumer
// thread reading an AF_UNIX stream socketpair. The relay under test sits in between:
//
//     producer --> [pipe] --src_fd--> RELAY --dst_fd--> [socketpair] --> consumer (discards)
//
// The baseline relays in this library (splice and read/write) give the numbers the Swift reactor is
// compared against. All functions are thread-compatible; a cbench_load must not be shared between
// threads except as documented.
//
// SIGPIPE: a relay writing to a consumer that went away raises SIGPIPE for splice(2). Callers
// should ignore SIGPIPE process-wide (signal(SIGPIPE, SIG_IGN)); the load's own threads block it.
#ifndef CBENCH_H
#define CBENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cbench_load cbench_load;

// Creates n streams: for each, a pipe (producer -> relay source) and an AF_UNIX SOCK_STREAM
// socketpair (relay destination -> consumer). src_fds[i] = pipe read end (O_NONBLOCK, O_CLOEXEC),
// dst_fds[i] = socket end the relay writes (O_NONBLOCK, O_CLOEXEC). The relay owns src/dst fds and
// must close them. `producer` (a CBENCH_PRODUCER_*; a child process only with n == 1) says who
// fills the pipes. Raises RLIMIT_NOFILE to the hard limit when the current soft limit is too
// small. Returns NULL + errno on failure.
enum {
    CBENCH_PRODUCER_THREAD = 0,  // a thread writing 64 KiB per write(2) to every stream
    CBENCH_PRODUCER_HEAD = 1,    // `head -c <bytes> /dev/zero` (GNU head: 4 KiB per write)
    CBENCH_PRODUCER_DD = 2,      // `busybox dd if=/dev/zero bs=65536`: what AgentBench's container
                                 // relay runs in its container (bytes: a multiple of 64 KiB)
};
cbench_load *cbench_load_create(int n, uint64_t bytes_per_stream, int producer, int *src_fds,
                                int *dst_fds);

// Optional, before cbench_load_start: pin the producer thread (or child) and the consumer
// thread to `cpu` (-1 = no pinning, the default). Lets the relay own a core on its own.
int cbench_load_set_cpu(cbench_load *load, int cpu);

// Starts the producer (thread or child) and the consumer thread (epoll over all consumer
// sockets, reads into a 256 KiB buffer and discards, counts bytes, a stream is done at EOF).
// Records the start time. Returns 0 or -errno.
int cbench_load_start(cbench_load *load);

// Blocks until every stream hit EOF at the consumer (the relay must shutdown(SHUT_WR) or close dst
// after source EOF). Returns total bytes received; *elapsed_ns = start..last EOF. Returns -1 if the
// total != n * bytes_per_stream (or a stream failed).
int64_t cbench_load_wait(cbench_load *load, int64_t *elapsed_ns);

// Stops and joins the threads (also when wait was never called), reaps a producer child, closes the producer
// and consumer fds the load owns. Safe on NULL.
void cbench_load_destroy(cbench_load *load);

// Baseline relays: run to completion on the calling thread over n (src, dst) pairs with one
// edge-triggered epoll loop, non-blocking, backpressure by waiting for EPOLLOUT on dst. After src
// EOF: shutdown(dst, SHUT_WR) and close both. A failing stream is closed and the others continue;
// the first error is returned. Return 0 or -errno. *cpu_ns = CPU time of the calling thread.
//
// splice(2) src pipe -> dst socket directly (src is a pipe, so no intermediate pipe is needed),
// SPLICE_F_NONBLOCK | SPLICE_F_MOVE, 1 MiB per call.
int cbench_relay_splice(int n, const int *src, const int *dst, int64_t *cpu_ns);
// read(64 KiB) into one shared buffer, write to dst; leftovers of a short write go to a per-stream
// 64 KiB buffer (allocated only for streams that hit backpressure).
int cbench_relay_rw(int n, const int *src, const int *dst, int64_t *cpu_ns);

// io_uring relay (relay_uring.c, needs liburing: link -luring). Same contract as the baselines.
// $CBENCH_URING_MODE picks the strategy: "poll" (default: IORING_OP_SPLICE on the O_NONBLOCK
// fds, run by 2-3 io-wq workers, -EAGAIN re-armed by linked POLL_ADDs), "rw" (IORING_OP_READ
// into a 64 KiB per-stream buffer + IORING_OP_SEND, no io-wq) or "block" (IORING_OP_SPLICE with O_NONBLOCK cleared: io-wq
// threads block for us, up to one per waiting stream). *cpu_ns = calling thread only: io-wq
// worker time is NOT included (see cbench_uring_last_stats and RUSAGE_SELF).
int cbench_relay_uring(int n, const int *src, const int *dst, int64_t *cpu_ns);

struct cbench_uring_stats {
    const char *mode;     // mode of the last run
    int tasks_before;     // threads in the process when the relay started (load threads too)
    int tasks_max;        // most threads seen during the run (sampled every 20 ms)
    int iowq_workers;     // iou-wrk threads alive at the end of the run
    int64_t iowq_cpu_ns;  // their CPU during the call (workers that exited mid-run are missing)
};
// Stats of the last cbench_relay_uring call in the process (not synchronized: benchmark use).
void cbench_uring_last_stats(struct cbench_uring_stats *out);

int64_t cbench_thread_cpu_ns(void);  // CLOCK_THREAD_CPUTIME_ID
int64_t cbench_monotonic_ns(void);   // CLOCK_MONOTONIC

// Pins the calling thread to `cpu`. Returns 0 or -errno.
int cbench_pin_self(int cpu);

// posix_spawn(path, argv, environ) + waitpid: the exec-latency baseline. Returns the elapsed ns
// from just before posix_spawn to the reaped exit, or -errno (also when the child did not exit 0:
// -ECHILD).
int64_t cbench_spawn_wait_ns(const char *path, char *const argv[]);

// The raw pty baseline: opens a pty, runs argv (e.g. head -c N /dev/zero) with the slave as its
// stdout (default termios, as gcs's ptys), and reads the master with blocking 64 KiB reads until
// the slave closes.
// Returns the bytes read (or -errno); *elapsed_ns and *cpu_ns (this thread's CPU) as measured.
int64_t cbench_pty_read(const char *path, char *const argv[], int64_t *elapsed_ns, int64_t *cpu_ns);

/// Reads `fd` (made blocking) to its end with 1 MiB reads; returns the byte count, or -errno
/// when the first read fails. The minimal reader of a relay's output: what a host costs at least.
int64_t cbench_drain_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif  // CBENCH_H
