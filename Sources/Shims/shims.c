// All shims are static inline in include/Shims.h; this file gives the C target a translation unit.
#include "Shims.h"

// ---- signal forwarding (the self-pipe trick) ---------------------------------------------------
// A signal handler that writes the signal number to a pipe: unlike signalfd it does not depend on
// the signal being blocked in every thread (the Swift runtime's threads may not block it).
static volatile int forward_fds[65];

static void forward_signal(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    if (signo > 0 && signo < 65 && forward_fds[signo] > 0) (void)write(forward_fds[signo], &byte, 1);
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
    sigset_t set; sigemptyset(&set); sigaddset(&set, signo);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
