// init: PID 1 of the LCOW utility VM.
//
//   /init [-d shell] [-e port] [-w] [-p] [--] [command [args...]]
//
// The kernel starts us with everything after "--" on its command line, normally
// `-e 1 /bin/vsockexec -e 109 /bin/gcs ...`. We set up the minimal system (setup.c), seed
// entropy from the host, start the command (the "primary child"), then reap every process that
// gets re-parented to us until the primary child exits. Then init exits with the child's status:
// PID 1 exiting panics the kernel, and with `panic=-1` the VM stops at once, which is how the host
// learns that the UVM is gone. -p asks for reboot(RB_POWER_OFF) instead (a clean power-off where
// the VMM supports it; it can hang as "System halted" where no power-off method exists, which is
// why it is not the default).
//
// Other options: -d shell also starts a debug shell, which becomes the primary child; -w overlays
// writable tmpfs layers onto /etc and /var; -n parses the arguments, prints the plan and exits
// (safe anywhere; the only mode allowed when not PID 1). With no arguments at all, the legacy
// LCOW v1 default is used: /bin/gcs with a debug log file, plus /bin/sh as the primary child.
#define _GNU_SOURCE
#include "init.h"
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_PATH "/sbin:/usr/sbin:/bin:/usr/bin"

static char *legacy_argv[] = {"/bin/gcs", "-loglevel", "debug", "-logfile=/run/gcs/gcs.log", NULL};
static char legacy_shell[] = "/bin/sh";

struct options {
    char *debug_shell;          // NULL: none
    unsigned int entropy_port;  // 0: no entropy seeding
    bool writable_overlays;
    bool power_off;
    bool dry_run;
    char **argv;                // the command; may be empty (then only the debug shell runs)
};

// ---- logging ------------------------------------------------------------------------------

void klog(int level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    // /dev/kmsg only exists once /dev is mounted; until then the console (stderr) is all we have.
    // Opened per message, as hcsshim's init does: the kernel rate-limits writes per open file
    // (printk.devkmsg=ratelimit, 10 per 5 s) and drops the rest while write() reports success,
    // so a failing boot's last words, die()'s, would be lost behind its earlier warnings. Errors
    // also go to the console.
    int kmsg = getpid() == 1 ? open("/dev/kmsg", O_WRONLY | O_CLOEXEC) : -1;
    bool logged = kmsg >= 0 && dprintf(kmsg, "<%d>init: %s\n", level, msg) > 0;
    if (kmsg >= 0) close(kmsg);
    if (logged && level > KLOG_ERR) return;
}

_Noreturn void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    klog(KLOG_ERR, "fatal: %s", msg);
    exit(1);
}

// ---- arguments ----------------------------------------------------------------------------

static void usage(FILE *f) {
    fputs("usage: init [-d shell] [-e port] [-w] [-p] [-n] [--] [command [args...]]\n"
          "  -d shell  also start a debug shell; it becomes the primary child\n"
          "  -e port   seed the kernel entropy pool from host vsock port (non-zero)\n"
          "  -w        writable tmpfs overlays on /etc and /var\n"
          "  -p        power off (reboot(RB_POWER_OFF)) instead of exiting when the child exits\n"
          "  -n        dry run: parse arguments, print the plan, exit (works when not PID 1)\n",
          f);
}

static int parse_args(int argc, char **argv, struct options *o) {
    if (argc <= 1) {  // legacy LCOW v1 invocation
        o->argv = legacy_argv;
        o->debug_shell = legacy_shell;
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        exit(0);
    }
    int c;
    while ((c = getopt(argc, argv, "+hd:e:wpn")) != -1) {
        switch (c) {
        case 'd': o->debug_shell = optarg; break;
        case 'e':
            if (parse_port(optarg, &o->entropy_port) != 0) {
                fprintf(stderr, "init: invalid entropy port '%s'\n", optarg);
                return -1;
            }
            break;
        case 'w': o->writable_overlays = true; break;
        case 'p': o->power_off = true; break;
        case 'n': o->dry_run = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    o->argv = argv + optind;
    if (!o->argv[0] && !o->debug_shell) {
        fputs("init: nothing to run (no command and no -d shell)\n", stderr);
        return -1;
    }
    return 0;
}

static void print_plan(const struct options *o) {
    printf("debug shell: %s\n", o->debug_shell ? o->debug_shell : "(none)");
    printf("entropy port: %u%s\n", o->entropy_port, o->entropy_port ? "" : " (disabled)");
    printf("writable overlays: %s\n", o->writable_overlays ? "yes" : "no");
    printf("on primary child exit: %s\n", o->power_off ? "power off" : "exit (kernel panic)");
    printf("command:");
    for (char **a = o->argv; *a; a++) printf(" [%s]", *a);
    printf("\n");
}

// ---- children -----------------------------------------------------------------------------

// Starts argv in its own session with default signal handling, a clean environment containing
// only PATH, and returns its pid (or -1).
static pid_t launch(char *const argv[]) {
    pid_t pid = fork();
    if (pid != 0) {
        if (pid < 0) klog(KLOG_ERR, "fork for %s: %s", argv[0], strerror(errno));
        return pid;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);  // init blocks everything; the child must not inherit it
    setsid();                              // own session and process group, no controlling tty
    clearenv();
    setenv("PATH", CHILD_PATH, 1);  // also the search path execvp uses
    execvp(argv[0], argv);
    klog(KLOG_ERR, "exec %s: %s", argv[0], strerror(errno));
    _exit(127);
}

// Optional vendor daemons baked into GPU images; started only when present.
static void start_services(void) {
    static char *persistenced[] = {"/bin/nvidia-persistenced", NULL};
    static char *fabricmanager[] = {"/bin/nv-fabricmanager", "-c",
                                    "/usr/share/nvidia/nvswitch/fabricmanager.cfg", NULL};
    char **services[] = {persistenced, fabricmanager};
    for (size_t i = 0; i < sizeof(services) / sizeof(*services); i++)
        if (access(services[i][0], X_OK) == 0) launch(services[i]);
}

static int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

// As PID 1 every orphan in the VM becomes our child; reaping them is our job forever (until the
// primary child exits). wait(2) works with SIGCHLD blocked, so no handler is needed.
static int reap_until(pid_t primary) {
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            die("wait: %s", strerror(errno));  // ECHILD: the primary child cannot be missing
        }
        if (pid == primary) return exit_code(status);
    }
}

_Noreturn static void shut_down(const struct options *o, int code) {
    klog(code ? KLOG_WARN : KLOG_INFO, "primary child exited with %d, %s", code,
         o->power_off ? "powering off" : "exiting");
    if (o->power_off) {
        // Flush what was written before a clean power-off. Not on the exit path: that is the
        // agent dying, the VM's state is thrown away, and a sync stuck on a stalled device
        // would keep PID 1 (and so the VM) alive, hiding the death from the host.
        sync();
        reboot(RB_POWER_OFF);
        klog(KLOG_ERR, "reboot(RB_POWER_OFF): %s", strerror(errno));
    }
    exit(code);
}

int main(int argc, char **argv) {
    struct options o = {0};
    if (parse_args(argc, argv, &o) != 0) return 1;
    if (o.dry_run) {
        print_plan(&o);
        return 0;
    }
    if (getpid() != 1) {  // everything below mounts over the system's /proc, /dev, /sys, ...
        fprintf(stderr, "init: refusing to run as pid %d (PID 1 only; -n for a dry run)\n",
                (int)getpid());
        return 1;
    }

    // Signals sent to PID 1 are ignored by the kernel unless handled; blocking them all makes
    // that explicit and keeps wait(2) free of EINTR. Children unblock in launch().
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);

    setup_rlimits();
    setup_dev();
    setup_base_mounts();
    if (o.writable_overlays) setup_writable_overlays();
    setup_cgroups();
    setup_loopback();
    if (o.entropy_port) seed_entropy(o.entropy_port);
    start_services();

    pid_t primary = -1;
    if (o.argv[0]) primary = launch(o.argv);
    if (o.debug_shell) {  // the shell takes over as the primary child
        char *shell_argv[] = {o.debug_shell, NULL};
        primary = launch(shell_argv);
    }
    if (primary < 0) die("could not start the primary child");
    shut_down(&o, reap_until(primary));
}
