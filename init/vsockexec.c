// vsockexec: run a program with its stdio connected to the host's vsock listeners.
//
//   vsockexec [-r [-g ms]] [-u prefix] [-i port] [-o port] [-e port] [--] program [args...]
//
// Default mode: dial one host stream per requested descriptor (a port named twice is dialled
// once and shared), install them as fd 0/1/2 and exec the program; any dial failure exits 1.
// This is how the boot chain hands the agent its log stream: `vsockexec -e 109 /bin/gcs ...`.
//
// -r (reconnect mode): the program gets a pipe as stdout (-o) and/or stderr (-e) instead, and
// vsockexec stays behind as a relay that copies the pipe to one host port (-e's, else -o's),
// waiting for the host to listen and reconnecting (resending the unsent tail) when the connection
// drops. The program can then never die of a broken host connection, which matters because the
// agent dying takes PID 1 and the whole VM with it. Stdin is not forwarded in this mode. Once
// the program has exited, output still waiting for an absent host is kept for at most -g
// milliseconds (default 10000), then dropped, and vsockexec exits with the program's status:
// PID 1 must see its child end (and stop the VM) even if the host never listens again.
//
// -u prefix (testing): dial the Unix socket "<prefix>_<port>" instead of vsock CID 2.
#define _GNU_SOURCE
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETRY_DELAY_MS 100
#define RELAY_BUF (64 * 1024)

struct options {
    unsigned int ports[3];  // stdin, stdout, stderr; 0 = leave the descriptor alone
    int reconnect;
    long give_up_ms;        // -r: how long pending output waits for the host once the program exited
    const char *unix_prefix;
    char **argv;            // the program to run
};

static void usage(FILE *f) {
    fputs("usage: vsockexec [-r] [-u unix-prefix] [-i port] [-o port] [-e port] [--] program "
          "[args...]\n"
          "  -i/-o/-e  connect stdin/stdout/stderr to host port (vsock CID 2)\n"
          "  -r        relay stdout/stderr through a pipe, reconnecting to the host as needed\n"
          "  -g ms     with -r: once the program has exited, drop output the host has not taken\n"
          "            after this long (default 10000) and exit\n"
          "  -u        dial the Unix socket <unix-prefix>_<port> instead of vsock (testing)\n",
          f);
}

static int parse_args(int argc, char **argv, struct options *o) {
    int c;
    // '+': stop at the first non-option so the program's own flags are left alone.
    o->give_up_ms = 10000;
    while ((c = getopt(argc, argv, "+hri:o:e:u:g:")) != -1) {
        int slot = c == 'i' ? 0 : c == 'o' ? 1 : c == 'e' ? 2 : -1;
        if (slot >= 0) {
            if (parse_port(optarg, &o->ports[slot]) != 0) {
                fprintf(stderr, "vsockexec: invalid port for -%c: '%s'\n", c, optarg);
                return -1;
            }
            continue;
        }
        switch (c) {
        case 'r': o->reconnect = 1; break;
        case 'u': o->unix_prefix = optarg; break;
        case 'g': {
            char *end;
            errno = 0;
            long ms = strtol(optarg, &end, 10);
            if (errno != 0 || *optarg == '\0' || *end != '\0' || ms < 0) {
                fprintf(stderr, "vsockexec: invalid milliseconds for -g: '%s'\n", optarg);
                return -1;
            }
            o->give_up_ms = ms;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind >= argc) {
        fputs("vsockexec: missing program\n", stderr);
        usage(stderr);
        return -1;
    }
    o->argv = argv + optind;
    return 0;
}

// Makes sure fds 0-2 are open (on /dev/null if need be) so that sockets we create later can never
// land on a standard descriptor and be clobbered by the dup2 shuffle below.
static int reserve_stdio(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) continue;
        int n = open("/dev/null", O_RDWR);
        if (n < 0) return -1;
        if (n != fd) {  // lower fds are open, so open(2) must have returned fd itself
            close(n);
            errno = EBADF;
            return -1;
        }
    }
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int exec_program(char **argv) {
    execvp(argv[0], argv);
    fprintf(stderr, "vsockexec: exec %s: %s\n", argv[0], strerror(errno));
    return 127;
}

// Default mode. Never returns on success.
static int run_direct(const struct options *o) {
    int fds[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++) {
        if (!o->ports[i]) continue;
        for (int j = 0; j < i; j++)  // the same port twice: share one connection
            if (o->ports[j] == o->ports[i]) fds[i] = fds[j];
        if (fds[i] >= 0) continue;
        fds[i] = dial_host(o->unix_prefix, o->ports[i]);
        if (fds[i] < 0) {
            fprintf(stderr, "vsockexec: connect to host port %u: %s\n", o->ports[i],
                    strerror(errno));
            return 1;
        }
    }
    // All sockets are >= 3 (reserve_stdio) and close-on-exec, so after dup2 only 0-2 survive.
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0 && dup2(fds[i], i) < 0) {
            fprintf(stderr, "vsockexec: dup2 onto fd %d: %s\n", i, strerror(errno));
            return 1;
        }
    }
    return exec_program(o->argv);
}

// The relayed program: whether it has exited (reaped by the dial loop), its status, and when.
static pid_t program_pid = -1;
static int program_exited, program_status;
static struct timespec program_exit_time;

static long ms_since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

// Dials until connected; -1 once the program has exited and its output has waited -g ms.
static int dial_forever(const struct options *o, unsigned int port) {
    for (;;) {
        int fd = dial_host(o->unix_prefix, port);
        if (fd >= 0) return fd;
        if (!program_exited && program_pid > 0 && waitpid(program_pid, &program_status, WNOHANG) == program_pid) {
            program_exited = 1;
            clock_gettime(CLOCK_MONOTONIC, &program_exit_time);
        }
        if (program_exited && ms_since(&program_exit_time) >= o->give_up_ms) return -1;
        sleep_ms(RETRY_DELAY_MS);
    }
}

// Sends buf[0..len), redialling (and resending what is left) whenever the connection fails.
// Returns -1 when the output is given up (see dial_forever), else 0.
static int send_all(const struct options *o, unsigned int port, int *sock, const char *buf,
                    size_t len) {
    size_t off = 0;
    while (off < len) {
        if (*sock < 0) *sock = dial_forever(o, port);
        if (*sock < 0) return -1;
        ssize_t w = write(*sock, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {  // EPIPE, ECONNRESET, ...: the host went away; wait for it to come back
            close(*sock);
            *sock = -1;
            // Paced like a failed dial: a host that accepts and drops at once is not dialled
            // in a tight loop.
            sleep_ms(RETRY_DELAY_MS);
        }
    }
    return 0;
}

static int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

static pid_t spawn_behind_pipe(const struct options *o, int pipe_wr) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    signal(SIGPIPE, SIG_DFL);  // the program gets ordinary semantics
    if ((o->ports[1] && dup2(pipe_wr, 1) < 0) || (o->ports[2] && dup2(pipe_wr, 2) < 0)) {
        fprintf(stderr, "vsockexec: dup2: %s\n", strerror(errno));
        _exit(127);
    }
    _exit(exec_program(o->argv));
}

// Reconnect mode: see the header comment.
static int run_relay(const struct options *o) {
    unsigned int port = o->ports[2] ? o->ports[2] : o->ports[1];
    if (!port) {
        fputs("vsockexec: -r requires -o or -e\n", stderr);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);  // a vanished host must surface as EPIPE, not kill the relay
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "vsockexec: pipe: %s\n", strerror(errno));
        return 1;
    }
    pid_t pid = spawn_behind_pipe(o, p[1]);
    if (pid < 0) {
        fprintf(stderr, "vsockexec: fork: %s\n", strerror(errno));
        return 1;
    }
    close(p[1]);  // from now on EOF on p[0] means the program (and its children) closed it
    program_pid = pid;

    static char buf[RELAY_BUF];
    int sock = dial_forever(o, port);
    int given_up = sock < 0;
    while (!given_up) {
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "vsockexec: read from program: %s\n", strerror(errno));
            break;
        }
        given_up = send_all(o, port, &sock, buf, (size_t)n) != 0;
    }
    if (given_up)
        fprintf(stderr, "vsockexec: the program has exited and host port %u has not listened for %ld ms: "
                        "its last output is dropped\n", port, o->give_up_ms);
    close(p[0]);
    if (sock >= 0) close(sock);

    int status = program_status;
    while (!program_exited && waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "vsockexec: waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    return exit_code(status);
}

int main(int argc, char **argv) {
    struct options o = {0};
    if (parse_args(argc, argv, &o) != 0) return 1;
    if (reserve_stdio() != 0) {
        fprintf(stderr, "vsockexec: cannot open /dev/null for stdio: %s\n", strerror(errno));
        return 1;
    }
    return o.reconnect ? run_relay(&o) : run_direct(&o);
}
