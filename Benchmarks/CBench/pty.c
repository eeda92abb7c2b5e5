// pty.c: the raw pty reader, the baseline of AgentBench's tty workload (what any relay pays
// just to read a pty master, before it sends anything anywhere).
#define _GNU_SOURCE
#include "cbench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int64_t cbench_pty_read(const char *path, char *const argv[], int64_t *elapsed_ns, int64_t *cpu_ns) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -errno;
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
        int e = errno; close(master); return -e;
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) { int e = errno; close(master); return -e; }
    // The pty keeps its default termios (cooked, OPOST), as the ptys gcs opens for processes do:
    // the writer's side of the line discipline costs more then than in raw mode.

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, slave, STDOUT_FILENO);
    int64_t cpu0 = cbench_thread_cpu_ns(), t0 = cbench_monotonic_ns();
    pid_t pid;
    int rc = posix_spawn(&pid, path, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(slave);
    if (rc != 0) { close(master); return -rc; }

    enum { buffer_size = 64 << 10 };
    char *buffer = malloc(buffer_size);
    if (!buffer) { close(master); kill(pid, SIGKILL); waitpid(pid, NULL, 0); return -ENOMEM; }
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(master, buffer, buffer_size);
        if (n > 0) { total += n; continue; }
        if (n < 0 && errno == EINTR) continue;
        break;  // 0, or EIO once the slave side is closed
    }
    *elapsed_ns = cbench_monotonic_ns() - t0;
    *cpu_ns = cbench_thread_cpu_ns() - cpu0;
    free(buffer);
    close(master);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return total;
}

int64_t cbench_drain_fd(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    enum { buffer_size = 1 << 20 };
    char *buffer = malloc(buffer_size);
    if (!buffer) return -ENOMEM;
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buffer, buffer_size);
        if (n > 0) { total += n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && total == 0 && errno != EIO) total = -errno;
        break;  // 0 (EOF), or EIO once a pty's slave side is closed
    }
    free(buffer);
    return total;
}
