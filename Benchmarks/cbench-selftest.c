// cbench-selftest: standalone sanity check of the CBench load generator and baseline relays.
// Lives outside Benchmarks/CBench so SwiftPM does not compile it into the C target.
//
//   gcc -O2 -Wall -Wextra -I Benchmarks/CBench/include Benchmarks/cbench-selftest.c
//       Benchmarks/CBench/*.c -lpthread -luring -o /tmp/cbench-selftest  (one line)
//   taskset -c 0 /tmp/cbench-selftest          # everything (producer, relay, consumer) on CPU 0
//   /tmp/cbench-selftest -r 0 -l 1             # relay thread on CPU 0, load threads on CPU 1
//
// Options: -s N divides every stream's size by N (quick runs), -r CPU pins the relay thread,
// -l CPU pins the producer/consumer (and head), -n REPS repeats each case (best run is reported).
// GB = 1e9 bytes. thr-CPU/GB counts the relay thread only. proc-CPU/GB is the RUSAGE_SELF delta
// from load start to the end of the run: relay thread + producer and consumer threads + io-wq
// workers (the head child is a separate process and not included), so compare it between relays
// of the same workload, not as an absolute relay cost. The uring rows add the peak thread count,
// io-wq workers alive at the end and their CPU/GB (io-wq work is invisible to thr-CPU).
#define _GNU_SOURCE
#include "cbench.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct workload {
    const char *name;
    int n;
    uint64_t bytes;
    int use_head;
};

struct relay {
    const char *name;
    int (*run)(int, const int *, const int *, int64_t *);
    const char *uring_mode;  // $CBENCH_URING_MODE for cbench_relay_uring, NULL otherwise
};

struct result {
    int64_t bytes, elapsed_ns, cpu_ns, proc_ns;
    struct cbench_uring_stats us;
};

static int64_t self_cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int run_once(const struct workload *w, const struct relay *r, uint64_t bytes, int relay_cpu,
                    int load_cpu, struct result *out) {
    int *src = calloc((size_t)w->n, sizeof(int));
    int *dst = calloc((size_t)w->n, sizeof(int));
    cbench_load *load = NULL;
    int rc = -1;
    if (!src || !dst) {
        fprintf(stderr, "selftest: out of memory\n");
        goto out;
    }
    load = cbench_load_create(w->n, bytes, w->use_head, src, dst);
    if (!load) {
        fprintf(stderr, "selftest: load_create(%s): %s\n", w->name, strerror(errno));
        goto out;
    }
    if (cbench_load_set_cpu(load, load_cpu) != 0) goto out;
    // Set while no load thread runs (setenv is not thread-safe against their getenv).
    if (r->uring_mode) setenv("CBENCH_URING_MODE", r->uring_mode, 1);
    int64_t proc0 = self_cpu_ns();
    if (relay_cpu >= 0 && cbench_pin_self(relay_cpu) != 0)
        fprintf(stderr, "selftest: cannot pin relay to CPU %d\n", relay_cpu);
    int s = cbench_load_start(load);
    if (s != 0) {
        fprintf(stderr, "selftest: load_start: %s\n", strerror(-s));
        for (int i = 0; i < w->n; i++) {  // the relay would have owned these
            close(src[i]);
            close(dst[i]);
        }
        goto out;
    }
    int rr = r->run(w->n, src, dst, &out->cpu_ns);
    if (rr != 0) fprintf(stderr, "selftest: relay %s: %s\n", r->name, strerror(-rr));
    if (r->uring_mode) cbench_uring_last_stats(&out->us);
    out->bytes = cbench_load_wait(load, &out->elapsed_ns);
    out->proc_ns = self_cpu_ns() - proc0;
    if (out->bytes < 0) {
        fprintf(stderr, "selftest: %s/%s: byte count mismatch\n", w->name, r->name);
        goto out;
    }
    rc = rr == 0 ? 0 : -1;
out:
    cbench_load_destroy(load);
    free(src);
    free(dst);
    return rc;
}

// Open descriptors of this process: compared before/after the cases to catch fd leaks.
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void spawn_baseline(void) {
    char *argv[] = {"true", NULL};
    int64_t best = INT64_MAX, sum = 0;
    const int reps = 50;
    for (int i = 0; i < reps; i++) {
        int64_t ns = cbench_spawn_wait_ns("/bin/true", argv);
        if (ns < 0) {
            fprintf(stderr, "selftest: spawn /bin/true: %s\n", strerror((int)-ns));
            return;
        }
        sum += ns;
        if (ns < best) best = ns;
    }
    printf("spawn+wait /bin/true: mean %.1f us, best %.1f us (%d runs)\n", sum / 1e3 / reps,
           best / 1e3, reps);
}

int main(int argc, char **argv) {
    int relay_cpu = -1, load_cpu = -1, reps = 1;
    uint64_t scale = 1;
    int c;
    while ((c = getopt(argc, argv, "s:r:l:n:")) != -1) {
        switch (c) {
        case 's': scale = strtoull(optarg, NULL, 10); break;
        case 'r': relay_cpu = atoi(optarg); break;
        case 'l': load_cpu = atoi(optarg); break;
        case 'n': reps = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-s scale] [-r relay_cpu] [-l load_cpu] [-n reps]\n", argv[0]);
            return 2;
        }
    }
    if (scale == 0 || reps <= 0) return 2;
    signal(SIGPIPE, SIG_IGN);  // splice(2) into a closed socket must not kill us

    const struct workload workloads[] = {
        {"1x2GiB(head)", 1, 2ULL << 30, 1},
        {"100x64MiB", 100, 64ULL << 20, 0},
        {"1000x4MiB", 1000, 4ULL << 20, 0},
    };
    const struct relay relays[] = {
        {"splice", cbench_relay_splice, NULL},
        {"rw", cbench_relay_rw, NULL},
        {"u-rw", cbench_relay_uring, "rw"},
        {"u-poll", cbench_relay_uring, "poll"},
        {"u-block", cbench_relay_uring, "block"},
    };
    int failures = 0;
    int fds_before = count_fds();
    printf("%-14s %-7s %12s %8s %7s %11s %12s %s\n", "workload", "relay", "bytes", "wall-s",
           "GB/s", "thr-CPU/GB", "proc-CPU/GB", "[uring: peak-threads iowq-workers iowq-CPU/GB]");
    for (size_t wi = 0; wi < sizeof(workloads) / sizeof(*workloads); wi++) {
        for (size_t ri = 0; ri < sizeof(relays) / sizeof(*relays); ri++) {
            struct result best = {0};
            for (int k = 0; k < reps; k++) {
                struct result res = {0};
                const struct workload *w = &workloads[wi];
                if (run_once(w, &relays[ri], w->bytes / scale, relay_cpu, load_cpu, &res) != 0) {
                    failures++;
                    continue;
                }
                if (!best.elapsed_ns || res.elapsed_ns < best.elapsed_ns) best = res;
            }
            if (!best.elapsed_ns) continue;
            double gb = best.bytes / 1e9;
            printf("%-14s %-7s %12lld %8.3f %7.2f %11.3f %12.3f", workloads[wi].name,
                   relays[ri].name, (long long)best.bytes, best.elapsed_ns / 1e9,
                   gb / (best.elapsed_ns / 1e9), (best.cpu_ns / 1e9) / gb,
                   (best.proc_ns / 1e9) / gb);
            if (relays[ri].uring_mode)
                printf("  %d(+%d) %d %.3f", best.us.tasks_max,
                       best.us.tasks_max - best.us.tasks_before, best.us.iowq_workers,
                       (best.us.iowq_cpu_ns / 1e9) / gb);
            printf("\n");
            fflush(stdout);
        }
    }
    int fds_after = count_fds();
    if (fds_after != fds_before) {
        fprintf(stderr, "selftest: fd leak: %d open before, %d after\n", fds_before, fds_after);
        failures++;
    }
    spawn_baseline();
    if (failures) fprintf(stderr, "selftest: %d case(s) FAILED\n", failures);
    return failures ? 1 : 0;
}
