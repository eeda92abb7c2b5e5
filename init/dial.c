// dial.c: see dial.h.
#define _GNU_SOURCE
#include "dial.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// Neither init nor vsockexec installs signal handlers, so connect(2) cannot fail with EINTR and
// needs no retry (retrying an interrupted connect would be wrong anyway: it completes async).
static int connect_or_close(int fd, const struct sockaddr *addr, socklen_t len) {
    if (connect(fd, addr, len) == 0) return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static int dial_unix(const char *prefix, unsigned int port) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s_%u", prefix, port);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    return connect_or_close(fd, (const struct sockaddr *)&sun, sizeof(sun));
}

static int dial_vsock(unsigned int port) {
    struct sockaddr_vm svm = {
        .svm_family = AF_VSOCK,
        .svm_cid = VMADDR_CID_HOST,
        .svm_port = port,
    };
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    return connect_or_close(fd, (const struct sockaddr *)&svm, sizeof(svm));
}

int dial_host(const char *unix_prefix, unsigned int port) {
    return unix_prefix ? dial_unix(unix_prefix, port) : dial_vsock(port);
}

int parse_port(const char *s, unsigned int *port) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    // VMADDR_PORT_ANY (-1U) is a wildcard, not a port we can dial; 0 is reserved as "unset".
    if (errno || end == s || *end || *s == '-' || v == 0 || v >= VMADDR_PORT_ANY) return -1;
    *port = (unsigned int)v;
    return 0;
}
