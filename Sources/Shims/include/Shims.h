// Thin C shims over Linux APIs that Swift cannot call directly: liburing's inline helpers,
// variadic or macro-based calls (ioctl, fcntl, CMSG_*), and structures Glibc does not export
// (sockaddr_vm). No logic lives here: every function is a one-line pass-through.
#ifndef GCS_SHIMS_H
#define GCS_SHIMS_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <termios.h>
#include <linux/vm_sockets.h>
#include <liburing.h>

// ---- errno -------------------------------------------------------------------------------------
static inline int shim_errno(void) { return errno; }
static inline void shim_set_errno(int value) { errno = value; }

// ---- fcntl / ioctl (variadic in C) -------------------------------------------------------------
static inline int shim_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
static inline int shim_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }
static inline int shim_fcntl_setfd(int fd, int flags) { return fcntl(fd, F_SETFD, flags); }
static inline int shim_fcntl_getfd(int fd) { return fcntl(fd, F_GETFD); }
static inline int shim_fcntl_setpipe_sz(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
static inline int shim_fcntl_getpipe_sz(int fd) { return fcntl(fd, F_GETPIPE_SZ); }
static inline int shim_ioctl_fionread(int fd, int *out) { return ioctl(fd, FIONREAD, out); }
static inline int shim_ioctl_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}
static inline int shim_ioctl_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws; int rc = ioctl(fd, TIOCGWINSZ, &ws);
    if (rc == 0) { *rows = ws.ws_row; *cols = ws.ws_col; }
    return rc;
}

// ---- epoll, eventfd, timerfd, signalfd ---------------------------------------------------------
static inline int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data.u64 = data };
    return epoll_ctl(epfd, op, fd, &ev);
}
static inline int shim_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms) {
    return epoll_wait(epfd, events, max, timeout_ms);
}
static inline uint32_t shim_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline uint64_t shim_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }
static inline size_t shim_epoll_event_size(void) { return sizeof(struct epoll_event); }

static inline int shim_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }
static inline int shim_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }
static inline int shim_timerfd_arm_ns(int fd, int64_t delay_ns) {
    struct itimerspec spec = {0};
    if (delay_ns <= 0) delay_ns = 1;
    spec.it_value.tv_sec = delay_ns / 1000000000LL;
    spec.it_value.tv_nsec = delay_ns % 1000000000LL;
    return timerfd_settime(fd, 0, &spec, NULL);
}
static inline int shim_timerfd_disarm(int fd) {
    struct itimerspec spec = {0};
    return timerfd_settime(fd, 0, &spec, NULL);
}

/// Blocks `signo` for the calling thread (and threads created after) and returns a signalfd.
static inline int shim_signalfd_for(const int *signals, int count) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}
static inline int shim_block_signals(const int *signals, int count) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
static inline size_t shim_signalfd_siginfo_size(void) { return sizeof(struct signalfd_siginfo); }
static inline uint32_t shim_siginfo_signo(const struct signalfd_siginfo *si) { return si->ssi_signo; }
static inline int32_t shim_siginfo_pid(const struct signalfd_siginfo *si) { return (int32_t)si->ssi_pid; }

/// Installs a handler for `signo` that writes the signal number (one byte) to `write_fd` (a
/// non-blocking pipe), and unblocks the signal in the calling thread. Defined in shims.c.
int shim_signal_forward(int signo, int write_fd);

// ---- pidfd -------------------------------------------------------------------------------------
static inline int shim_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static inline int shim_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
/// waitid(P_PIDFD, ...) with WEXITED|WNOHANG. Returns 0 and fills status/code when the child has
/// exited (code: CLD_EXITED, CLD_KILLED, CLD_DUMPED), 1 when it is still running, -1 on error.
static inline int shim_pidfd_reap(int pidfd, int *code, int *status) {
    siginfo_t info; memset(&info, 0, sizeof(info));
    if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 1;
    *code = info.si_code; *status = info.si_status;
    return 0;
}
static inline int shim_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

// ---- splice ------------------------------------------------------------------------------------
static inline ssize_t shim_splice(int in, int out, size_t len, unsigned int flags) {
    return splice(in, NULL, out, NULL, len, flags);
}
static inline unsigned int shim_splice_f_nonblock(void) { return SPLICE_F_NONBLOCK; }
static inline unsigned int shim_splice_f_move(void) { return SPLICE_F_MOVE; }
static inline int shim_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

// ---- sockets -----------------------------------------------------------------------------------
static inline int shim_socket(int domain, int type) {
    return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}
static inline int shim_socketpair(int type, int fds[2]) {
    return socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds);
}
static inline int shim_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }
/// Fills a sockaddr_un; returns its length or -1 (ENAMETOOLONG) when the path does not fit.
static inline int shim_sockaddr_un(struct sockaddr_un *addr, const char *path) {
    size_t len = strlen(path);
    if (len >= sizeof(addr->sun_path)) { errno = ENAMETOOLONG; return -1; }
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, len);
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}
static inline int shim_connect_unix(int fd, const char *path) {
    struct sockaddr_un addr; int len = shim_sockaddr_un(&addr, path);
    if (len < 0) return -1;
    return connect(fd, (struct sockaddr *)&addr, (socklen_t)len);
}
static inline int shim_bind_unix(int fd, const char *path) {
    struct sockaddr_un addr; int len = shim_sockaddr_un(&addr, path);
    if (len < 0) return -1;
    return bind(fd, (struct sockaddr *)&addr, (socklen_t)len);
}
static inline int shim_connect_vsock(int fd, unsigned int cid, unsigned int port) {
    struct sockaddr_vm addr; memset(&addr, 0, sizeof(addr));
    addr.svm_family = AF_VSOCK; addr.svm_cid = cid; addr.svm_port = port;
    return connect(fd, (struct sockaddr *)&addr, sizeof(addr));
}
static inline int shim_bind_vsock(int fd, unsigned int cid, unsigned int port) {
    struct sockaddr_vm addr; memset(&addr, 0, sizeof(addr));
    addr.svm_family = AF_VSOCK; addr.svm_cid = cid; addr.svm_port = port;
    return bind(fd, (struct sockaddr *)&addr, sizeof(addr));
}
static inline int shim_so_error(int fd) {
    int err = 0; socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}
/// Sends one fd over a Unix socket with SCM_RIGHTS (one byte of payload).
static inline ssize_t shim_send_fd(int sock, int fd) {
    char byte = 0; struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}
/// Receives data and at most one fd (SCM_RIGHTS). *fd_out is -1 when none arrived.
static inline ssize_t shim_recv_fd(int sock, void *buf, size_t len, int *fd_out) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * 4)]; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
    *fd_out = -1;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[4]; memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)count);
            for (int i = 0; i < count; i++) { if (*fd_out < 0) *fd_out = fds[i]; else close(fds[i]); }
        }
    }
    return n;
}

static inline unsigned long shim_nofile_limit(void) {
    struct rlimit rl; if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    return (unsigned long)rl.rlim_cur;
}

// ---- threads, ptys -----------------------------------------------------------------------------
static inline int shim_tgkill(pid_t tid, int sig) { return (int)syscall(SYS_tgkill, getpid(), tid, sig); }
/// Opens a pty pair the way the agent needs it: master O_RDWR|O_NOCTTY|O_CLOEXEC, slave unlocked
/// and opened O_RDWR|O_NOCTTY|O_CLOEXEC. Returns 0, or -1 with errno (no fd leaks on failure).
static inline int shim_open_pty(int *master_out, int *slave_out, char *name, size_t name_len) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, name_len) != 0) {
        int saved = errno; close(master); errno = saved; return -1;
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) { int saved = errno; close(master); errno = saved; return -1; }
    *master_out = master; *slave_out = slave;
    return 0;
}

// ---- process spawning ------------------------------------------------------------------------
#include <spawn.h>
/// posix_spawn with stdio mapping: child fd i (0..n-1) is `fds[i]` (-1: /dev/null), every other
/// descriptor is close-on-exec as all of ours are. `new_session` makes the child a session
/// leader; with `ctty_path` it then opens that tty (without O_NOCTTY) as its fds 0-2 so that
/// it becomes the controlling terminal. `cwd` may be NULL. Returns the pid or -errno.
static inline pid_t shim_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                               const int *fds, int nfds, int new_session, const char *ctty_path) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_session) flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setflags(&attr, flags);
    sigset_t none; sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    // Caught signals revert to default at exec by themselves; only ignored ones (SIGPIPE, which
    // the agent ignores) would stay ignored in the child. Resetting just those saves the child
    // one sigaction per signal number before exec.
    sigset_t ignored; sigemptyset(&ignored); sigaddset(&ignored, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &ignored);
    if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    if (ctty_path) {
        posix_spawn_file_actions_addopen(&fa, 0, ctty_path, O_RDWR, 0);
        posix_spawn_file_actions_adddup2(&fa, 0, 1);
        posix_spawn_file_actions_adddup2(&fa, 0, 2);
    } else {
        for (int i = 0; i < nfds; i++) {
            if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], i);
            else posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        }
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -rc;
}
/// waitid(P_ALL, WEXITED|WNOHANG): 1 with pid/code/status filled when a child was reaped,
/// 0 when none is ready, -1 with errno (ECHILD: no children at all).
static inline int shim_reap_any(pid_t *pid, int *code, int *status) {
    siginfo_t info; memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 0;
    *pid = info.si_pid; *code = info.si_code; *status = info.si_status;
    return 1;
}

// ---- resource limits, thread CPU time ----------------------------------------------------------
/// Raises RLIMIT_NOFILE to at least `want` (the hard limit too when privileged). 0 on success.
static inline int shim_raise_nofile(unsigned long want) {
    struct rlimit rl; if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur >= want) return 0;
    if (rl.rlim_max < want) {
        struct rlimit raised = { .rlim_cur = want, .rlim_max = want };
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return 0;
    }
    rl.rlim_cur = want > rl.rlim_max ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    return rl.rlim_cur >= want ? 0 : -1;
}
static inline int64_t shim_thread_cpu_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline int64_t shim_monotonic_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// ---- io_uring (liburing's inline helpers) ------------------------------------------------------
static inline int shim_uring_init(unsigned entries, struct io_uring *ring) { return io_uring_queue_init(entries, ring, 0); }
static inline void shim_uring_exit(struct io_uring *ring) { io_uring_queue_exit(ring); }
static inline int shim_uring_fd(const struct io_uring *ring) { return ring->ring_fd; }
static inline struct io_uring_sqe *shim_uring_get_sqe(struct io_uring *ring) { return io_uring_get_sqe(ring); }
static inline void shim_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buf, unsigned len, uint64_t data) {
    io_uring_prep_read(sqe, fd, buf, len, (__u64)-1); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, unsigned len, uint64_t data) {
    io_uring_prep_write(sqe, fd, buf, len, (__u64)-1); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_splice(struct io_uring_sqe *sqe, int in, int out, unsigned len, unsigned flags, uint64_t data) {
    io_uring_prep_splice(sqe, in, -1, out, -1, len, flags); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_poll_add(struct io_uring_sqe *sqe, int fd, unsigned mask, uint64_t data) {
    io_uring_prep_poll_add(sqe, fd, mask); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_accept(struct io_uring_sqe *sqe, int fd, uint64_t data) {
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_connect(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr, socklen_t len, uint64_t data) {
    io_uring_prep_connect(sqe, fd, addr, len); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_timeout(struct io_uring_sqe *sqe, struct __kernel_timespec *ts, uint64_t data) {
    io_uring_prep_timeout(sqe, ts, 0, 0); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_prep_cancel(struct io_uring_sqe *sqe, uint64_t target, uint64_t data) {
    io_uring_prep_cancel64(sqe, target, 0); io_uring_sqe_set_data64(sqe, data);
}
static inline void shim_uring_sqe_link(struct io_uring_sqe *sqe) { sqe->flags |= IOSQE_IO_LINK; }
static inline int shim_uring_submit(struct io_uring *ring) { return io_uring_submit(ring); }
static inline int shim_uring_peek_cqe(struct io_uring *ring, struct io_uring_cqe **cqe) { return io_uring_peek_cqe(ring, cqe); }
static inline int shim_uring_wait_cqe(struct io_uring *ring, struct io_uring_cqe **cqe) { return io_uring_wait_cqe(ring, cqe); }
static inline void shim_uring_cqe_seen(struct io_uring *ring, struct io_uring_cqe *cqe) { io_uring_cqe_seen(ring, cqe); }
static inline uint64_t shim_uring_cqe_data(const struct io_uring_cqe *cqe) { return io_uring_cqe_get_data64(cqe); }
static inline int32_t shim_uring_cqe_res(const struct io_uring_cqe *cqe) { return cqe->res; }
/// 1 when the kernel supports `op` on this ring, 0 when not, -errno on failure to probe.
static inline int shim_uring_op_supported(struct io_uring *ring, int op) {
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (!probe) return -ENOSYS;
    int ok = io_uring_opcode_supported(probe, op);
    io_uring_free_probe(probe);
    return ok;
}
static inline int shim_ioring_op_splice(void) { return IORING_OP_SPLICE; }
static inline int shim_ioring_op_poll_add(void) { return IORING_OP_POLL_ADD; }

#endif
