#define _GNU_SOURCE 1
#include "CTestSupport.h"
#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static inline uint8_t pattern_byte(uint64_t seed, uint64_t pos) {
    uint64_t word = (pos >> 3) * 0x9E3779B97F4A7C15ULL ^ seed;
    return (uint8_t)(word >> ((pos & 7) * 8));
}

void ts_fill(uint64_t seed, uint64_t offset, void *buf, size_t len) {
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) p[i] = pattern_byte(seed, offset + i);
}

int64_t ts_verify(uint64_t seed, uint64_t offset, const void *buf, size_t len) {
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(seed, offset + i)) return (int64_t)i;
    return -1;
}

int ts_spawn(char *const argv[], int in, int out, int err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0) posix_spawn_file_actions_adddup2(&fa, in, 0);
    if (out >= 0) posix_spawn_file_actions_adddup2(&fa, out, 1);
    if (err >= 0) posix_spawn_file_actions_adddup2(&fa, err, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -rc;
}

uint64_t ts_inode(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int ts_count_open_inodes(const uint64_t *inodes, int n) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char path[64], target[128];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", entry->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0) continue;
        target[len] = 0;
        // "socket:[12345]" or "pipe:[12345]"
        char *open_bracket = strchr(target, '[');
        if (!open_bracket) continue;
        uint64_t ino = strtoull(open_bracket + 1, NULL, 10);
        for (int i = 0; i < n; i++) if (inodes[i] == ino) { count++; break; }
    }
    closedir(dir);
    return count;
}
