// setup.c: the one-time system setup /init performs before starting the agent (spec section 2.2,
// steps 3-10). Order matters: /dev before the /dev symlinks, /proc before anything reading it,
// /sys before cgroups, and entropy last because it needs the vsock transport.
#define _GNU_SOURCE
#include "init.h"
#include "dial.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/random.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define PSEUDO_FLAGS (MS_NODEV | MS_NOSUID | MS_NOEXEC)  // the default for every pseudo filesystem

enum op_kind { OP_MKDIR, OP_MOUNT, OP_SYMLINK };

// One filesystem step. OP_MOUNT: mount(source, target, fstype, flags, data); OP_MKDIR: mkdir
// target; OP_SYMLINK: target -> source. EEXIST on mkdir/symlink is expected (the initrd may ship
// the node already); every other failure is fatal.
struct fs_op {
    enum op_kind kind;
    const char *source, *target, *fstype;
    unsigned long flags;
    const char *data;
};

static const struct fs_op base_ops[] = {
    {OP_MOUNT, "proc", "/proc", "proc", PSEUDO_FLAGS, NULL},
    {OP_SYMLINK, "/proc/self/fd", "/dev/fd", NULL, 0, NULL},
    {OP_SYMLINK, "/proc/self/fd/0", "/dev/stdin", NULL, 0, NULL},
    {OP_SYMLINK, "/proc/self/fd/1", "/dev/stdout", NULL, 0, NULL},
    {OP_SYMLINK, "/proc/self/fd/2", "/dev/stderr", NULL, 0, NULL},
    {OP_MOUNT, "tmpfs", "/run", "tmpfs", PSEUDO_FLAGS, "mode=0755"},
    {OP_MOUNT, "tmpfs", "/tmp", "tmpfs", PSEUDO_FLAGS, NULL},
    {OP_MKDIR, NULL, "/dev/shm", NULL, 0, NULL},
    {OP_MOUNT, "shm", "/dev/shm", "tmpfs", PSEUDO_FLAGS, NULL},
    {OP_MKDIR, NULL, "/dev/pts", NULL, 0, NULL},
    {OP_MOUNT, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, NULL},
    {OP_MOUNT, "sysfs", "/sys", "sysfs", PSEUDO_FLAGS, NULL},
};

// -w: a read-only root (VHD) still needs writable /etc and /var; overlay them with a tmpfs upper
// layer. /var keeps exec permission (tools unpack and run things there).
#define OVER "/run/over"
static const struct fs_op overlay_ops[] = {
    {OP_MKDIR, NULL, OVER, NULL, 0, NULL},
    {OP_MOUNT, "tmpfs", OVER, "tmpfs", PSEUDO_FLAGS, "size=40%,mode=0755"},
    {OP_MKDIR, NULL, OVER "/etc", NULL, 0, NULL},
    {OP_MKDIR, NULL, OVER "/etc/upper", NULL, 0, NULL},
    {OP_MKDIR, NULL, OVER "/etc/work", NULL, 0, NULL},
    {OP_MOUNT, "overlay", "/etc", "overlay", PSEUDO_FLAGS,
     "lowerdir=/etc,upperdir=" OVER "/etc/upper,workdir=" OVER "/etc/work"},
    {OP_MKDIR, NULL, OVER "/var", NULL, 0, NULL},
    {OP_MKDIR, NULL, OVER "/var/upper", NULL, 0, NULL},
    {OP_MKDIR, NULL, OVER "/var/work", NULL, 0, NULL},
    {OP_MOUNT, "overlay", "/var", "overlay", MS_NODEV | MS_NOSUID,
     "lowerdir=/var,upperdir=" OVER "/var/upper,workdir=" OVER "/var/work"},
};

static void run_ops(const struct fs_op *ops, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const struct fs_op *op = &ops[i];
        switch (op->kind) {
        case OP_MKDIR:
            if (mkdir(op->target, 0755) != 0 && errno != EEXIST)
                die("mkdir %s: %s", op->target, strerror(errno));
            break;
        case OP_SYMLINK:
            if (symlink(op->source, op->target) != 0 && errno != EEXIST)
                die("symlink %s -> %s: %s", op->target, op->source, strerror(errno));
            break;
        case OP_MOUNT:
            if (mount(op->source, op->target, op->fstype, op->flags, op->data) != 0)
                die("mount %s on %s: %s", op->fstype, op->target, strerror(errno));
            break;
        }
    }
}

void setup_base_mounts(void) { run_ops(base_ops, sizeof(base_ops) / sizeof(*base_ops)); }

void setup_writable_overlays(void) {
    run_ops(overlay_ops, sizeof(overlay_ops) / sizeof(*overlay_ops));
}

// The agent and containers open many files; raise the ceiling once here so everything inherits it.
void setup_rlimits(void) {
    struct rlimit rl = {.rlim_cur = 1024, .rlim_max = 1024 * 1024};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
}

// The kernel may already have mounted devtmpfs (CONFIG_DEVTMPFS_MOUNT): EBUSY is fine.
void setup_dev(void) {
    if (mount("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL) != 0 && errno != EBUSY)
        die("mount devtmpfs on /dev: %s", strerror(errno));
}

// ---- cgroups --------------------------------------------------------------------------------

// The host can force cgroup v1 with the kernel command line token "hcsshim.cgroup=v1".
static bool cgroup_v1_forced(void) {
    char line[4096];
    FILE *f = fopen("/proc/cmdline", "re");
    if (!f) return false;
    bool forced = false;
    if (fgets(line, sizeof(line), f)) {
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
            if (strcmp(tok, "hcsshim.cgroup=v1") == 0) forced = true;
    }
    fclose(f);
    return forced;
}

// runc's v2 device controller is a BPF_CGROUP_DEVICE program; without kernel support for it,
// v2 is unusable for containers and v1 must be used. ENOSYS/EINVAL mean "unsupported"; success
// or EPERM both prove the attach type exists.
static bool bpf_cgroup_device_supported(void) {
    int dir = open(CGROUP_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (unsigned int)dir;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    long rc = syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr));
    int err = errno;
    close(dir);
    return rc == 0 || (err != ENOSYS && err != EINVAL);
}

static bool write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = write(fd, text, strlen(text));
    int err = errno;
    close(fd);
    errno = err;
    return n == (ssize_t)strlen(text);
}

// Delegates every available controller to child cgroups ("+cpu +memory ..."). The write is
// all-or-nothing, so on failure retry one controller at a time and keep what works.
static void enable_v2_controllers(void) {
    char list[1024], request[2048] = "";
    FILE *f = fopen(CGROUP_ROOT "/cgroup.controllers", "re");
    if (!f) die("open %s/cgroup.controllers: %s", CGROUP_ROOT, strerror(errno));
    if (!fgets(list, sizeof(list), f)) list[0] = '\0';
    fclose(f);
    char *save = NULL;
    for (char *c = strtok_r(list, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
        size_t used = strlen(request);
        snprintf(request + used, sizeof(request) - used, "%s+%s", used ? " " : "", c);
    }
    if (!request[0] || write_file(CGROUP_ROOT "/cgroup.subtree_control", request)) return;
    klog(KLOG_WARN, "cgroup v2: enabling '%s' failed (%s), trying one by one", request,
         strerror(errno));
    save = NULL;
    for (char *c = strtok_r(request, " ", &save); c; c = strtok_r(NULL, " ", &save))
        if (!write_file(CGROUP_ROOT "/cgroup.subtree_control", c))
            klog(KLOG_WARN, "cgroup v2: enabling %s: %s", c + 1, strerror(errno));
}

static bool try_cgroup_v2(void) {
    if (cgroup_v1_forced()) {
        klog(KLOG_INFO, "cgroup v2 disabled by hcsshim.cgroup=v1");
        return false;
    }
    if (mount("cgroup2", CGROUP_ROOT, "cgroup2", PSEUDO_FLAGS, NULL) != 0) {
        klog(KLOG_INFO, "cgroup v2: mount failed (%s)", strerror(errno));
        return false;
    }
    const char *why = NULL;
    if (access(CGROUP_ROOT "/cgroup.controllers", F_OK) != 0)
        why = "no cgroup.controllers";
    else if (!bpf_cgroup_device_supported())
        why = "no BPF_CGROUP_DEVICE support";
    if (why) {
        klog(KLOG_WARN, "cgroup v2 unusable (%s), falling back to v1", why);
        umount(CGROUP_ROOT);
        return false;
    }
    enable_v2_controllers();
    return true;
}

// v1: a tmpfs with one hierarchy per enabled controller listed in /proc/cgroups
// ("#subsys_name hierarchy num_cgroups enabled").
static void setup_cgroup_v1(void) {
    if (mount("tmpfs", CGROUP_ROOT, "tmpfs", PSEUDO_FLAGS, "mode=0755") != 0)
        die("mount tmpfs on %s: %s", CGROUP_ROOT, strerror(errno));
    FILE *f = fopen("/proc/cgroups", "re");
    if (!f) die("open /proc/cgroups: %s", strerror(errno));
    char line[256], name[64], path[128];
    int hierarchy, count, enabled, mounted = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' ||
            sscanf(line, "%63s %d %d %d", name, &hierarchy, &count, &enabled) != 4 || !enabled)
            continue;
        snprintf(path, sizeof(path), "%s/%s", CGROUP_ROOT, name);
        if ((mkdir(path, 0755) != 0 && errno != EEXIST) ||
            mount("cgroup", path, "cgroup", PSEUDO_FLAGS, name) != 0) {
            klog(KLOG_WARN, "cgroup v1: %s: %s", name, strerror(errno));
            continue;
        }
        mounted++;
    }
    fclose(f);
    if (mounted == 0) die("cgroup v1: no controller could be mounted");
}

void setup_cgroups(void) {
    if (!try_cgroup_v2()) setup_cgroup_v1();
}

// ---- network and entropy ----------------------------------------------------------------------

// Loopback must be up for anything in the UVM talking to localhost. A kernel without IPv6 answers
// EAFNOSUPPORT, which is fine.
static void loopback_up(int domain) {
    int s = socket(domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        if (errno == EAFNOSUPPORT) return;
        die("socket(domain %d): %s", domain, strerror(errno));
    }
    struct ifreq req;
    memset(&req, 0, sizeof(req));
    strncpy(req.ifr_name, "lo", sizeof(req.ifr_name) - 1);
    if (ioctl(s, SIOCGIFFLAGS, &req) != 0) die("SIOCGIFFLAGS lo: %s", strerror(errno));
    req.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &req) != 0) die("SIOCSIFFLAGS lo: %s", strerror(errno));
    close(s);
}

void setup_loopback(void) {
    loopback_up(AF_INET);
    loopback_up(AF_INET6);
}

// A fresh VM has almost no entropy and getrandom() would block the agent; the host offers random
// bytes on a vsock port. Credit them fully (RNDADDENTROPY) until EOF. Failures only cost boot
// time later, so they are warnings. A host that accepts and then sends nothing for
// ENTROPY_TIMEOUT_S ends the read (hcsshim's init would wait for it for good, before the agent
// even starts).
enum { ENTROPY_TIMEOUT_S = 5 };
void seed_entropy(unsigned int port) {
    int s = dial_host(NULL, port);
    if (s < 0) {
        klog(KLOG_WARN, "entropy: connect to host port %u: %s", port, strerror(errno));
        return;
    }
    struct timeval timeout = {.tv_sec = ENTROPY_TIMEOUT_S};
    if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0)
        klog(KLOG_WARN, "entropy: SO_RCVTIMEO: %s", strerror(errno));
    int rnd = open("/dev/random", O_RDWR | O_CLOEXEC);
    if (rnd < 0) {
        klog(KLOG_WARN, "entropy: open /dev/random: %s", strerror(errno));
        close(s);
        return;
    }
    // RNDADDENTROPY takes a rand_pool_info header followed by the bytes (its flexible buf[]).
    enum { CHUNK = 4096 };
    union {
        struct rand_pool_info info;
        unsigned char raw[sizeof(struct rand_pool_info) + CHUNK];
    } pool;
    size_t total = 0;
    for (;;) {
        ssize_t n = read(s, pool.info.buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                klog(KLOG_WARN, "entropy: host port %u sent nothing for %d s; going on", port, ENTROPY_TIMEOUT_S);
            else if (n < 0)
                klog(KLOG_WARN, "entropy: read: %s", strerror(errno));
            break;
        }
        pool.info.entropy_count = (int)n * 8;
        pool.info.buf_size = (int)n;
        if (ioctl(rnd, RNDADDENTROPY, &pool) != 0) {
            klog(KLOG_WARN, "entropy: RNDADDENTROPY: %s", strerror(errno));
            break;
        }
        total += (size_t)n;
    }
    klog(KLOG_INFO, "entropy: added %zu bytes from host port %u", total, port);
    close(rnd);
    close(s);
}
