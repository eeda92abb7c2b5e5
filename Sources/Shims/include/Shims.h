// Thin C shims over Linux APIs that Swift cannot call directly: liburing's inline helpers,
// variadic or macro-based calls (ioctl, fcntl, CMSG_*), GNU-only calls (splice, pipe2, accept4,
// pidfd, posix_spawn_file_actions_addchdir_np) and structures Glibc does not export
// (sockaddr_vm). No logic lives here: every function is a pass-through, defined in shims.c.
//
// This header includes only <stddef.h> and <stdint.h> and uses plain or opaque types, on
// purpose: including glibc headers here under _GNU_SOURCE (which liburing.h defines) gives
// structs like fd_set a different shape than in Swift's Glibc module, and the two modules then
// fail to build together depending on module-cache order.
#ifndef GCS_SHIMS_H
#define GCS_SHIMS_H

#include <stddef.h>
#include <stdint.h>

// ---- fcntl / ioctl ------------------------------------------------------------------------------
int shim_fcntl_getfl(int fd);
int shim_fcntl_setfl(int fd, int flags);
int shim_fcntl_setpipe_sz(int fd, int size);
int shim_fcntl_getpipe_sz(int fd);
int shim_ioctl_fionread(int fd, int *out);
int shim_ioctl_set_winsize(int fd, unsigned short rows, unsigned short cols);

// ---- epoll, eventfd, signalfd, signals --------------------------------------------------------
/// epoll's flags (Linux ABI values; <sys/epoll.h> is not part of Swift's Glibc module).
enum {
    SHIM_EPOLLIN = 0x001, SHIM_EPOLLOUT = 0x004, SHIM_EPOLLERR = 0x008, SHIM_EPOLLHUP = 0x010,
    SHIM_EPOLLRDHUP = 0x2000,
};
static const uint32_t SHIM_EPOLLET = 1u << 31;
enum { SHIM_EPOLL_CTL_ADD = 1, SHIM_EPOLL_CTL_DEL = 2, SHIM_EPOLL_CTL_MOD = 3 };
/// The calling thread's kernel id, and naming it (shown in /proc/<pid>/task/*/comm).
int shim_gettid(void);
void shim_set_thread_name(const char *name);
int shim_epoll_create(void);
int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// `events` points at `max` struct epoll_event (size: shim_epoll_event_size()).
int shim_epoll_wait(int epfd, void *events, int max, int timeout_ms);
uint32_t shim_epoll_event_events(const void *event);
uint64_t shim_epoll_event_data(const void *event);
size_t shim_epoll_event_size(void);
int shim_eventfd(void);
/// Blocks `signals` for the calling thread and returns a signalfd for them.
int shim_signalfd_for(const int *signals, int count);
int shim_block_signals(const int *signals, int count);
int shim_unblock_signals(const int *signals, int count);
size_t shim_signalfd_siginfo_size(void);
uint32_t shim_siginfo_signo(const void *siginfo);
/// Installs a handler for `signo` that writes the signal number (one byte) to `write_fd` (a
/// non-blocking pipe), and unblocks the signal in the calling thread.
int shim_signal_forward(int signo, int write_fd);
int shim_tgkill(int tid, int sig);

// ---- processes ----------------------------------------------------------------------------------
int shim_pidfd_open(int pid);
int shim_pidfd_send_signal(int pidfd, int sig);
/// waitid(P_PIDFD, WEXITED|WNOHANG): 0 with code (CLD_*) and status filled when reaped, 1 when
/// still running, -1 on error.
int shim_pidfd_reap(int pidfd, int *code, int *status);
/// waitid(P_ALL, WEXITED|WNOHANG): 1 with pid/code/status when a child was reaped, 0 when none
/// is ready, -1 with errno (ECHILD: no children).
int shim_reap_any(int *pid, int *code, int *status);
/// Whether `pid` is a child of this process right now (running, or exited and not yet reaped);
/// nothing is reaped.
int shim_is_child(int pid);
int shim_set_child_subreaper(void);
/// reboot(RB_POWER_OFF), as hcsshim's gcs does (no sync: the VM's state is thrown away, and a
/// sync stuck on a stalled device would keep the VM from stopping); returns -1 (errno) on failure.
int shim_power_off(void);
/// vfork + execve (posix_spawn's mechanism without its per-call child stack) with stdio mapping: child fd i (0..n-1) is `fds[i]` (-1: /dev/null). With
/// `new_session` the child is a session leader; with `ctty_path` it then opens that tty as fds
/// 0-2, which makes it the controlling terminal. `cwd` may be NULL. Returns the pid or -errno.
int shim_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
               const int *fds, int nfds, int new_session, const char *ctty_path);
/// shim_spawn works out once which signal handlers a child must not inherit; code that installs
/// a handler (other than through shim_signal_forward) after the first spawn calls this.
void shim_spawn_dispositions_changed(void);
/// Opens `path` (relative) for reading, resolved as if the directory `root` were `/` (openat2
/// with RESOLVE_IN_ROOT: `..` and absolute symlinks stay inside), and only if it is a regular
/// file (EINVAL otherwise; checked on an O_PATH descriptor before anything is opened for real),
/// O_NONBLOCK|O_NOCTTY|O_CLOEXEC. Fails (ENOSYS) on kernels without openat2 (before 5.6).
int shim_open_in_root(const char *root, const char *path);
/// Opens `path` (relative) below `directory` for appending, creating it with `mode` (less the
/// umask): no symlink may be followed on the way (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS,
/// `directory` itself no symlink), and it must be a regular file, checked before an existing
/// one is opened for real (no device's open). The descriptor, or -1 with errno.
int shim_open_append_beneath(const char *directory, const char *path, unsigned int mode);
/// Opens a pty: master O_RDWR|O_NOCTTY|O_CLOEXEC, slave unlocked and opened the same way;
/// `name` receives the slave path. 0, or -1 with errno (nothing leaked).
int shim_open_pty(int *master_out, int *slave_out, char *name, size_t name_len);

// ---- pipes and splice ---------------------------------------------------------------------------
long shim_splice(int in, int out, size_t len, unsigned int flags);
unsigned int shim_splice_f_nonblock(void);
unsigned int shim_splice_f_move(void);
int shim_pipe2(int fds[2], int flags);

// ---- sockets ------------------------------------------------------------------------------------
/// A socket of `domain`/`type` with SOCK_CLOEXEC|SOCK_NONBLOCK.
int shim_socket(int domain, int type);
int shim_socketpair(int type, int fds[2]);
int shim_accept(int fd);
int shim_connect_unix(int fd, const char *path);
int shim_bind_unix(int fd, const char *path);
int shim_connect_vsock(int fd, unsigned int cid, unsigned int port);
int shim_so_error(int fd);
/// Receives data and at most one fd (SCM_RIGHTS); *fd_out is -1 when none arrived.
long shim_recv_fd(int sock, void *buf, size_t len, int *fd_out);
/// What `shim_fd_traits` reports.
enum {
    /// A socket (written with send(MSG_NOSIGNAL)).
    SHIM_FD_SOCKET = 1,
    /// A read that returns less than asked proves the queue empty at that moment: a pipe or
    /// FIFO, an AF_UNIX stream socket. Not AF_VSOCK: a Hyper-V socket (hv_sock) read returns
    /// one VMBus packet even when more are queued; nor datagram or seqpacket sockets.
    SHIM_FD_SHORT_READ_DRAINS = 2,
};
/// SHIM_FD_* bits of `fd` (0 when it cannot be examined).
int shim_fd_traits(int fd);

// ---- limits and clocks --------------------------------------------------------------------------
/// Raises RLIMIT_NOFILE to at least `want` (the hard limit too when privileged). 0 on success.
int shim_raise_nofile(unsigned long want);
/// Raises the soft RLIMIT_NOFILE to the hard limit, as Go's runtime does at start-up; children
/// spawned by shim_spawn afterwards get the original soft limit back. Call once, before any
/// spawn. *before / *after: the soft limit then and now. 0 on success, -1 + errno.
int shim_raise_nofile_to_hard(unsigned long *before, unsigned long *after);
/// malloc_trim(pad): returns free heap pages of every arena to the kernel; 1 if any were.
int shim_malloc_trim(size_t pad);
/// mallopt(M_ARENA_MAX, 1): every thread allocates from the main arena (call before threads start).
int shim_malloc_single_arena(void);
/// The malloc heap: bytes in use, free inside the arenas, and in separately mmapped blocks.
void shim_heap_stats(size_t *in_use, size_t *free_bytes, size_t *mmapped);
unsigned long shim_nofile_limit(void);
/// The machine's RAM in bytes (sysinfo totalram × mem_unit); 0 with errno set on failure.
uint64_t shim_total_ram(void);

// ---- page-backed buffers -------------------------------------------------------------------------
/// A private anonymous read/write mapping of `length` bytes, or NULL with errno set.
void *shim_map_pages(size_t length);
/// mremap(MREMAP_MAYMOVE): the mapping at `address` resized to `new_length`, or NULL with errno.
void *shim_remap_pages(void *address, size_t old_length, size_t new_length);
/// madvise(MADV_DONTNEED): the pages' memory goes back to the kernel; they read as zero after.
int shim_discard_pages(void *address, size_t length);
int64_t shim_thread_cpu_ns(void);
int64_t shim_monotonic_ns(void);

// ---- mounts and device nodes ----------------------------------------------------------------------
/// mount(source, target, MS_BIND): 0, or -1 with errno.
int shim_mount_bind(const char *source, const char *target);
/// mount --make-rshared target.
int shim_mount_make_rshared(const char *target);
/// mount -t type -o data source target (no flags).
int shim_mount_fs(const char *source, const char *target, const char *type, const char *data);
/// umount2(target, UMOUNT_NOFOLLOW): one mount off the top of target's stack.
int shim_umount(const char *target);
/// The device node at `path` (not followed): *type 'c' or 'b', its numbers, permission bits
/// and owner. -1 with errno (ENODEV for anything but a character or block device).
int shim_device_numbers(const char *path, char *type, int64_t *major_out, int64_t *minor_out, uint32_t *mode,
                        uint32_t *uid, uint32_t *gid);

// ---- io_uring (liburing) -------------------------------------------------------------------------
struct io_uring;
struct io_uring_sqe;
struct io_uring_cqe;
/// A ring of `entries`, or NULL with *error = -errno.
struct io_uring *shim_uring_create(unsigned entries, int *error);
/// io_uring_queue_exit and free.
void shim_uring_exit(struct io_uring *ring);
int shim_uring_fd(const struct io_uring *ring);
struct io_uring_sqe *shim_uring_get_sqe(struct io_uring *ring);
void shim_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buf, unsigned len, uint64_t data);
void shim_uring_prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, unsigned len, uint64_t data);
void shim_uring_prep_splice(struct io_uring_sqe *sqe, int in, int out, unsigned len, unsigned flags, uint64_t data);
int shim_uring_submit(struct io_uring *ring);
int shim_uring_peek_cqe(struct io_uring *ring, struct io_uring_cqe **cqe);
void shim_uring_cqe_seen(struct io_uring *ring, struct io_uring_cqe *cqe);
uint64_t shim_uring_cqe_data(const struct io_uring_cqe *cqe);
int32_t shim_uring_cqe_res(const struct io_uring_cqe *cqe);
/// 1 when the kernel supports `op` on this ring, 0 when not, -errno on failure to probe.
int shim_uring_op_supported(struct io_uring *ring, int op);
int shim_ioring_op_splice(void);

#endif
