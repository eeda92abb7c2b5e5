// spawn.c: the agent's process spawn (vfork + execve with stdio mapping, a new session and
// controlling tty, signal reset), declared in include/Shims.h. Kept apart from the plain
// pass-throughs in shims.c: this is the one shim with real logic, and runs in a vfork child.
#define _GNU_SOURCE 1
#include "Shims.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

// What a spawned child must not inherit, worked out once (not per spawn: that was 64 sigaction
// calls in every child, ~60 of them for signals left at their default) and again after this
// file's code changes a disposition (shim_signal_forward; SIGPIPE is always reset). A handler
// installed behind our back after the first spawn must call shim_spawn_dispositions_changed().
static pthread_mutex_t spawn_state_lock = PTHREAD_MUTEX_INITIALIZER;
static int spawn_reset_valid;
static sigset_t spawn_reset;   // caught signals, and SIGPIPE (the agent ignores it)
static int spawn_dev_null = -1; // O_RDWR|O_CLOEXEC, kept open: stdio the caller leaves unset

void shim_spawn_dispositions_changed(void) {
    pthread_mutex_lock(&spawn_state_lock);
    spawn_reset_valid = 0;
    pthread_mutex_unlock(&spawn_state_lock);
}

static int spawn_state(sigset_t *reset, int *dev_null) {
    pthread_mutex_lock(&spawn_state_lock);
    if (!spawn_reset_valid) {
        sigemptyset(&spawn_reset);
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction sa;
            if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0) continue;
            if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGPIPE)) continue;
            sigaddset(&spawn_reset, sig);
        }
        sigaddset(&spawn_reset, SIGPIPE);
        spawn_reset_valid = 1;
    }
    if (spawn_dev_null < 0) spawn_dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    *reset = spawn_reset;
    *dev_null = spawn_dev_null;
    pthread_mutex_unlock(&spawn_state_lock);
    return *dev_null < 0 ? -errno : 0;
}

// The soft RLIMIT_NOFILE the agent started with, given back to every child, when
// shim_raise_nofile_to_hard raised the agent's own (as Go's runtime does for hcsshim's gcs and
// the processes it starts). Written once at start-up, before any spawn.
static struct rlimit children_nofile;
static int children_nofile_set;

int shim_raise_nofile_to_hard(unsigned long *before, unsigned long *after) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    *before = *after = (unsigned long)rl.rlim_cur;
    if (rl.rlim_cur >= rl.rlim_max) return 0;
    struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) return -1;
    children_nofile = rl;
    children_nofile_set = 1;
    *after = (unsigned long)raised.rlim_cur;
    return 0;
}

int shim_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
               const int *fds, int nfds, int new_session, const char *ctty_path) {
    // vfork + execve, as glibc's posix_spawn does internally (CLONE_VM|CLONE_VFORK), but on
    // this thread's stack: no child stack to mmap and munmap (a TLB shootdown each) and no
    // file-action list to build. The child shares our memory until execve, so it only makes
    // async-signal-safe calls and reports failure through `child_error`.
    if (nfds < 0 || nfds > 16) return -EINVAL;
    sigset_t reset;
    int dev_null;
    int state_error = spawn_state(&reset, &dev_null);
    if (state_error != 0) return state_error;
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    volatile int child_error = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        // Our handlers must never run in the child: it has its own copy of the handler table
        // (no CLONE_SIGHAND), so reset every caught signal, and SIGPIPE which the agent ignores.
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(&reset, sig) == 1) sigaction(sig, &dfl, NULL);
        if (new_session && setsid() < 0) goto fail;
        if (ctty_path) {
            int tty = open(ctty_path, O_RDWR);  // a session leader's first tty: the controlling one
            if (tty < 0) goto fail;
            for (int i = 0; i < 3; i++) if (tty != i && dup2(tty, i) < 0) goto fail;
            if (tty > 2) close(tty);
        } else {
            // Unset stdio is /dev/null. Lift sources out of 0..nfds-1 first so no dup2 below
            // overwrites a later source.
            int source[16];
            for (int i = 0; i < nfds; i++) {
                source[i] = fds[i] < 0 ? dev_null : fds[i];
                if (source[i] < nfds && source[i] != i) {
                    source[i] = fcntl(source[i], F_DUPFD_CLOEXEC, nfds);
                    if (source[i] < 0) goto fail;
                }
            }
            for (int i = 0; i < nfds; i++) {
                if (source[i] == i) {
                    if (fcntl(i, F_SETFD, 0) < 0) goto fail;  // keep it across exec
                } else if (dup2(source[i], i) < 0) {
                    goto fail;
                }
            }
        }
        if (cwd && chdir(cwd) != 0) goto fail;
        // A child has its own limits (no CLONE_THREAD): this changes only its own.
        if (children_nofile_set && setrlimit(RLIMIT_NOFILE, &children_nofile) != 0) goto fail;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
    fail:
        child_error = errno ? errno : EINVAL;
        _exit(127);
    }
    int spawn_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) return -spawn_errno;
    if (child_error != 0) {
        // The child has exited (or is exiting); reap it unless a reaper got there first
        // (ECHILD then), so a failed spawn leaves no zombie.
        int error = child_error;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -error;
    }
    return pid;
}
