/* tests/fuzz/fuzz_common.h — what the libFuzzer targets (tests/fuzz/fuzz_*.c) share.
 *
 * Most dllm readers take a path (they mmap, stat or look beside the file), so
 * a target writes each input to a file in its own private directory
 * (mkdtemp under $TMPDIR, else /dev/shm, else /tmp; removed at exit) and
 * calls the reader on that path.  /dev/shm first because it is memory: on a
 * disk, replacing a file per input costs block I/O (ext4 flushes a file
 * truncated and rewritten) and made the file targets several times slower.
 * fz_fail() aborts with a message: libFuzzer then reports a crash and writes
 * the reproducer, which is how a broken invariant (not only a sanitizer
 * finding) becomes a finding.
 * Not here: corpora, the run script (tests/fuzz/run.sh), anything that
 * writes outside the private directory.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#define FZ_MAX_FILES 8
static char fz_dir[512];
static char fz_names[FZ_MAX_FILES][600];
static int fz_n_names;

static void fz_cleanup(void) {
    for (int i = 0; i < fz_n_names; i++) unlink(fz_names[i]);
    if (fz_dir[0]) rmdir(fz_dir);
}

static inline void fz_fail(const char *what) {
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    abort();
}

/* Path of `name` in the private directory, created on first use. */
static inline const char *fz_path(const char *name) {
    if (!fz_dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fz_dir, sizeof fz_dir, "%s/dllm-fuzz.XXXXXX", t);
        if (!mkdtemp(fz_dir)) { perror("fuzz: mkdtemp"); exit(3); }
        atexit(fz_cleanup);
    }
    for (int i = 0; i < fz_n_names; i++) {
        const char *base = strrchr(fz_names[i], '/') + 1;
        if (!strcmp(base, name)) return fz_names[i];
    }
    if (fz_n_names == FZ_MAX_FILES) { fprintf(stderr, "fuzz: too many file names\n"); exit(3); }
    snprintf(fz_names[fz_n_names], sizeof fz_names[0], "%s/%s", fz_dir, name);
    return fz_names[fz_n_names++];
}

/* Replace file `name` by exactly the bytes data[0..size); returns its path. */
static inline const char *fz_file(const char *name, const uint8_t *data, size_t size) {
    const char *path = fz_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) { perror(path); exit(3); }
    for (size_t off = 0; off < size;) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) { perror(path); exit(3); }
        off += (size_t)k;
    }
    close(fd);
    return path;
}

#endif
