// Definitions of the pass-throughs declared in include/Shims.h (see there for why they live
// here rather than inline in the header).
#define _GNU_SOURCE 1
#include "Shims.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/vm_sockets.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

int shim_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
int shim_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }
int shim_fcntl_setpipe_sz(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int shim_fcntl_getpipe_sz(int fd) { return fcntl(fd, F_GETPIPE_SZ); }
int shim_ioctl_fionread(int fd, int *out) { return ioctl(fd, FIONREAD, out); }
int shim_ioctl_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int shim_gettid(void) { return (int)gettid(); }
void shim_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data.u64 = data };
    return epoll_ctl(epfd, op, fd, &ev);
}
int shim_epoll_wait(int epfd, void *events, int max, int timeout_ms) {
    return epoll_wait(epfd, (struct epoll_event *)events, max, timeout_ms);
}
uint32_t shim_epoll_event_events(const void *event) { return ((const struct epoll_event *)event)->events; }
uint64_t shim_epoll_event_data(const void *event) { return ((const struct epoll_event *)event)->data.u64; }
size_t shim_epoll_event_size(void) { return sizeof(struct epoll_event); }
int shim_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

static void fill_set(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}
int shim_signalfd_for(const int *signals, int count) {
    sigset_t set; fill_set(&set, signals, count);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}
int shim_block_signals(const int *signals, int count) {
    sigset_t set; fill_set(&set, signals, count);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
int shim_unblock_signals(const int *signals, int count) {
    sigset_t set; fill_set(&set, signals, count);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
size_t shim_signalfd_siginfo_size(void) { return sizeof(struct signalfd_siginfo); }
uint32_t shim_siginfo_signo(const void *siginfo) { return ((const struct signalfd_siginfo *)siginfo)->ssi_signo; }

// Signal forwarding (the self-pipe trick): unlike signalfd it does not depend on the signal
// being blocked in every thread (the Swift runtime's threads may not block it).
static volatile int forward_fds[65];
static void forward_signal(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    if (signo > 0 && signo < 65 && forward_fds[signo] > 0) (void)!write(forward_fds[signo], &byte, 1);
    errno = saved;
}
int shim_signal_forward(int signo, int write_fd) {
    if (signo <= 0 || signo >= 65) { errno = EINVAL; return -1; }
    forward_fds[signo] = write_fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = forward_signal;
    action.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, NULL) != 0) return -1;
    shim_spawn_dispositions_changed();
    sigset_t set; sigemptyset(&set); sigaddset(&set, signo);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
int shim_tgkill(int tid, int sig) { return (int)syscall(SYS_tgkill, getpid(), tid, sig); }

int shim_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int shim_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
int shim_pidfd_reap(int pidfd, int *code, int *status) {
    siginfo_t info; memset(&info, 0, sizeof(info));
    if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 1;
    *code = info.si_code; *status = info.si_status;
    return 0;
}
int shim_reap_any(int *pid, int *code, int *status) {
    siginfo_t info; memset(&info, 0, sizeof(info));
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 0;
    *pid = info.si_pid; *code = info.si_code; *status = info.si_status;
    return 1;
}
int shim_is_child(int pid) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}
int shim_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int shim_power_off(void) { return reboot(RB_POWER_OFF); }

int shim_open_pty(int *master_out, int *slave_out, char *name, size_t name_len) {
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

long shim_splice(int in, int out, size_t len, unsigned int flags) { return splice(in, NULL, out, NULL, len, flags); }
unsigned int shim_splice_f_nonblock(void) { return SPLICE_F_NONBLOCK; }
unsigned int shim_splice_f_move(void) { return SPLICE_F_MOVE; }
int shim_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int shim_socket(int domain, int type) { return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); }
int shim_socketpair(int type, int fds[2]) { return socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds); }
int shim_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }
static int unix_address(struct sockaddr_un *addr, const char *path) {
    size_t len = strlen(path);
    if (len >= sizeof(addr->sun_path)) { errno = ENAMETOOLONG; return -1; }
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, len);
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}
int shim_connect_unix(int fd, const char *path) {
    struct sockaddr_un addr; int len = unix_address(&addr, path);
    return len < 0 ? -1 : connect(fd, (struct sockaddr *)&addr, (socklen_t)len);
}
int shim_bind_unix(int fd, const char *path) {
    struct sockaddr_un addr; int len = unix_address(&addr, path);
    return len < 0 ? -1 : bind(fd, (struct sockaddr *)&addr, (socklen_t)len);
}
int shim_connect_vsock(int fd, unsigned int cid, unsigned int port) {
    struct sockaddr_vm addr; memset(&addr, 0, sizeof(addr));
    addr.svm_family = AF_VSOCK; addr.svm_cid = cid; addr.svm_port = port;
    return connect(fd, (struct sockaddr *)&addr, sizeof(addr));
}
int shim_so_error(int fd) {
    int err = 0; socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}
int shim_fd_traits(int fd) {
    // Sockets (the common case: bridge and stdio connections) in two getsockopt calls, no fstat.
    int domain = 0, type = 0;
    socklen_t length = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0) {
        if (domain != AF_UNIX) return SHIM_FD_SOCKET;
        length = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) return SHIM_FD_SOCKET;
        return SHIM_FD_SOCKET | SHIM_FD_SHORT_READ_DRAINS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    if (S_ISFIFO(st.st_mode)) return SHIM_FD_SHORT_READ_DRAINS;
    if (S_ISSOCK(st.st_mode)) return SHIM_FD_SOCKET;  // SO_DOMAIN unknown to this kernel
    return 0;
}

long shim_recv_fd(int sock, void *buf, size_t len, int *fd_out) {
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

int shim_raise_nofile(unsigned long want) {
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
unsigned long shim_nofile_limit(void) {
    struct rlimit rl; if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    return (unsigned long)rl.rlim_cur;
}
int64_t shim_thread_cpu_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int64_t shim_monotonic_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct io_uring *shim_uring_create(unsigned entries, int *error) {
    struct io_uring *ring = malloc(sizeof(*ring));
    if (!ring) { *error = -ENOMEM; return NULL; }
    int rc = io_uring_queue_init(entries, ring, 0);
    if (rc < 0) { free(ring); *error = rc; return NULL; }
    return ring;
}
void shim_uring_exit(struct io_uring *ring) { io_uring_queue_exit(ring); free(ring); }
int shim_uring_fd(const struct io_uring *ring) { return ring->ring_fd; }
struct io_uring_sqe *shim_uring_get_sqe(struct io_uring *ring) { return io_uring_get_sqe(ring); }
void shim_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buf, unsigned len, uint64_t data) {
    io_uring_prep_read(sqe, fd, buf, len, (__u64)-1); io_uring_sqe_set_data64(sqe, data);
}
void shim_uring_prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, unsigned len, uint64_t data) {
    io_uring_prep_write(sqe, fd, buf, len, (__u64)-1); io_uring_sqe_set_data64(sqe, data);
}
void shim_uring_prep_splice(struct io_uring_sqe *sqe, int in, int out, unsigned len, unsigned flags, uint64_t data) {
    io_uring_prep_splice(sqe, in, -1, out, -1, len, flags); io_uring_sqe_set_data64(sqe, data);
}
int shim_uring_submit(struct io_uring *ring) { return io_uring_submit(ring); }
int shim_uring_peek_cqe(struct io_uring *ring, struct io_uring_cqe **cqe) { return io_uring_peek_cqe(ring, cqe); }
void shim_uring_cqe_seen(struct io_uring *ring, struct io_uring_cqe *cqe) { io_uring_cqe_seen(ring, cqe); }
uint64_t shim_uring_cqe_data(const struct io_uring_cqe *cqe) { return io_uring_cqe_get_data64(cqe); }
int32_t shim_uring_cqe_res(const struct io_uring_cqe *cqe) { return cqe->res; }
int shim_uring_op_supported(struct io_uring *ring, int op) {
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    if (!probe) return -ENOSYS;
    int ok = io_uring_opcode_supported(probe, op);
    io_uring_free_probe(probe);
    return ok;
}
int shim_ioring_op_splice(void) { return IORING_OP_SPLICE; }

int shim_malloc_trim(size_t pad) { return malloc_trim(pad); }

uint64_t shim_total_ram(void) {
    struct sysinfo info;
    if (sysinfo(&info) != 0) return 0;
    return (uint64_t)info.totalram * info.mem_unit;
}

void *shim_map_pages(size_t length) {
    void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    // Never part of a huge page: with THP "always" the mapping could merge with a neighbour
    // and khugepaged could fill in the pages a discard gave back.
    (void)madvise(p, length, MADV_NOHUGEPAGE);
    return p;
}

void *shim_remap_pages(void *address, size_t old_length, size_t new_length) {
    void *p = mremap(address, old_length, new_length, MREMAP_MAYMOVE);
    return p == MAP_FAILED ? NULL : p;
}

int shim_discard_pages(void *address, size_t length) { return madvise(address, length, MADV_DONTNEED); }
int shim_malloc_single_arena(void) { return mallopt(M_ARENA_MAX, 1); }
void shim_heap_stats(size_t *in_use, size_t *free_bytes, size_t *mmapped) {
    struct mallinfo2 info = mallinfo2();
    *in_use = info.uordblks; *free_bytes = info.fordblks; *mmapped = info.hblkhd;
}

// ---- mounts and device nodes ----------------------------------------------------------------------
int shim_mount_bind(const char *source, const char *target) { return mount(source, target, NULL, MS_BIND, NULL); }
int shim_mount_make_rshared(const char *target) { return mount(NULL, target, NULL, MS_SHARED | MS_REC, NULL); }
int shim_mount_fs(const char *source, const char *target, const char *type, const char *data) {
    return mount(source, target, type, 0, data);
}
int shim_umount(const char *target) { return umount2(target, UMOUNT_NOFOLLOW); }
int shim_device_numbers(const char *path, char *type, int64_t *major_out, int64_t *minor_out, uint32_t *mode,
                        uint32_t *uid, uint32_t *gid) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    if (S_ISCHR(st.st_mode)) *type = 'c';
    else if (S_ISBLK(st.st_mode)) *type = 'b';
    else { errno = ENODEV; return -1; }
    *major_out = major(st.st_rdev);
    *minor_out = minor(st.st_rdev);
    *mode = st.st_mode & 07777;
    *uid = st.st_uid;
    *gid = st.st_gid;
    return 0;
}

// openat2(2) of `path` relative to `directory` (opened with `dir_flags` more: O_NOFOLLOW to
// refuse a symlink there), kept only if it is a regular file (any other kind closed, EINVAL).
// The descriptor, or -1 with errno.
static int openat2_regular(const char *directory, int dir_flags, const char *path, const struct open_how *how) {
    int dir_fd = open(directory, O_PATH | O_DIRECTORY | O_CLOEXEC | dir_flags);
    if (dir_fd < 0) return -1;
    int fd = (int)syscall(SYS_openat2, dir_fd, path, how, sizeof *how);
    int saved = errno;
    close(dir_fd);
    if (fd < 0) { errno = saved; return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { saved = errno; close(fd); errno = saved; return -1; }
    if (!S_ISREG(st.st_mode)) { close(fd); errno = EINVAL; return -1; }
    return fd;
}

// Opens what an O_PATH descriptor refers to, for real, with `flags`; closes `path_fd`.
static int reopen(int path_fd, int flags) {
    char proc_path[64];
    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", path_fd);
    int fd = open(proc_path, flags);
    int saved = errno;
    close(path_fd);
    errno = saved;
    return fd;
}

int shim_open_append_beneath(const char *directory, const char *path, unsigned int mode) {
    // No symlink anywhere below `directory` (a container that can write there could point one
    // anywhere in the VM). A new file is made with O_EXCL (nothing else can be opened that way);
    // an existing one is looked at through O_PATH first, so that no device's open and no FIFO's
    // wait happens before it is known to be a regular file.
    const unsigned long long beneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    struct open_how create = {
        .flags = O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOCTTY,
        .mode = mode,
        .resolve = beneath,
    };
    int fd = openat2_regular(directory, O_NOFOLLOW, path, &create);
    if (fd >= 0 || errno != EEXIST) return fd;
    struct open_how look = {.flags = O_PATH | O_CLOEXEC, .resolve = beneath};
    int path_fd = openat2_regular(directory, O_NOFOLLOW, path, &look);
    if (path_fd < 0) return -1;
    return reopen(path_fd, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
}

int shim_open_in_root(const char *root, const char *path) {
    // O_PATH first: nothing is opened for real (no device's open, no fifo's wait, no
    // controlling tty) until the file is known to be a regular one.
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int path_fd = openat2_regular(root, 0, path, &how);
    if (path_fd < 0) return -1;
    return reopen(path_fd, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}
