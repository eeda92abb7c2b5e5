// Test-only helpers in C, where a debug Swift build would be too slow to check gigabytes of data:
// a position-dependent byte pattern, so a relay's output can be verified byte for byte at any
// chunking, and a spawn helper for child-process tests.
#ifndef GCS_TEST_SUPPORT_H
#define GCS_TEST_SUPPORT_H
#include <stddef.h>
#include <stdint.h>

/// Fills `buf` with the pattern bytes for stream positions [offset, offset+len).
void ts_fill(uint64_t seed, uint64_t offset, void *buf, size_t len);
/// Returns -1 when `buf` holds exactly the pattern at `offset`, else the index of the first bad byte.
int64_t ts_verify(uint64_t seed, uint64_t offset, const void *buf, size_t len);
/// posix_spawn of argv[0] (a path) with stdin/stdout/stderr set to the given fds (-1: inherit).
/// Returns the pid, or -errno.
int ts_spawn(char *const argv[], int in, int out, int err);
/// Number of open descriptors of this process whose /proc/self/fd link names `inode`-based
/// sockets or pipes among `inodes` (count `n`); used to prove descriptors were really closed.
int ts_count_open_inodes(const uint64_t *inodes, int n);
/// The inode of an open descriptor, or 0.
uint64_t ts_inode(int fd);
#endif
