// util.c: clocks, CPU pinning and the posix_spawn exec-latency baseline.
#define _GNU_SOURCE
#include "cbench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cbench_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

int64_t cbench_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

int cbench_pin_self(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int64_t cbench_spawn_wait_ns(const char *path, char *const argv[]) {
    pid_t pid;
    int status;
    int64_t t0 = cbench_monotonic_ns();
    int rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    if (rc != 0) return -rc;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno;
    }
    int64_t t1 = cbench_monotonic_ns();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -ECHILD;
    return t1 - t0;
}
