// init.h: shared between init.c (process management) and setup.c (one-time system setup).
#ifndef INIT_INIT_H
#define INIT_INIT_H

#include <stdbool.h>

// Kernel log levels used for diagnostics (the "<N>" prefix understood by /dev/kmsg).
enum { KLOG_ERR = 3, KLOG_WARN = 4, KLOG_INFO = 6 };

// Logs "init: <message>" to /dev/kmsg once it can be opened, to stderr (the console) before.
void klog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Logs at KLOG_ERR and exits 1. As PID 1 that panics the kernel, which (with panic=-1) stops the VM:
// a UVM whose base mounts failed is useless, and the host notices the exit at once.
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// setup.c: each step logs what failed; fatal steps die().
void setup_rlimits(void);
void setup_dev(void);
void setup_base_mounts(void);
void setup_writable_overlays(void);
void setup_cgroups(void);
void setup_loopback(void);
void seed_entropy(unsigned int port);

#endif  // INIT_INIT_H
