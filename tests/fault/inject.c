/* tests/fault/inject.c — an LD_PRELOAD shim that makes the k-th write, fsync,
 * rename or close of a program fail (or kill it), in the spirit of jq's
 * src/inject_errors.c.  Built by the Makefile as build/tests/fault/inject.so;
 * used by tests/cli/fault.sh and tests/cli/kill.sh.
 *
 *   DLLM_FAIL=OP:K[:HOW][,OP:K[:HOW]...]   (at most 4)
 *                          OP    write | fsync | rename | close
 *                          K     1-based index of the call of that OP to hit
 *                          HOW   ENOSPC (default) | EIO | EINVAL: return -1
 *                                with that errno (EINVAL on a rename is what a
 *                                filesystem without RENAME_EXCHANGE says);
 *                                KILL: raise(SIGKILL) instead of the call
 *   DLLM_FAIL_LOG=FILE     on a hit, append "OP K HOW\n" to FILE
 *   DLLM_FAIL_COUNT=FILE   at exit, write "write N\nfsync N\nrename N\nclose N\n"
 *                          (the calls counted), to size the loops over K
 *
 * What counts as a call (so stderr messages and reads never shift K):
 *   write   write(2) on a regular file (fstat) — dl_out's output and temp
 *           files, the safetensors and mask spools; not pipes, ttys, fd 0-2;
 *   fsync   fsync(2) and fdatasync(2) on anything (files and directories);
 *   rename  rename, renameat, renameat2 (a checkpoint's RENAME_EXCHANGE too);
 *   close   close(2) of a regular file open for writing that still has a
 *           name (st_nlink > 0: an unlinked spool's close carries nothing a
 *           program must check); the fd is still released, as Linux does
 *           when close fails.
 * Covered paths: every dllm output goes through write(2) called by dllm
 * itself (dl_io.c, dl_safetensors.c), never through stdio, so the PLT
 * interposition here sees them.  NOT covered: writes glibc makes inside
 * stdio (fwrite/fprintf/fclose use the internal __write, which cannot be
 * interposed): dllm-train's --metrics log and dllm-sample's --trace, which
 * are written in place with stdio; a full filesystem (tests/cli/fault.sh)
 * exercises those instead.  pwrite/writev are not wrapped (dllm uses none).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OP_WRITE, OP_FSYNC, OP_RENAME, OP_CLOSE, N_OPS };
static const char *const OP_NAME[N_OPS] = { "write", "fsync", "rename", "close" };

#define MAX_SPECS 4
static struct { int op; long k; int how; } spec[MAX_SPECS];   /* how: an errno, 0 = SIGKILL */
static int n_specs;
static long counts[N_OPS];        /* calls seen, per OP (atomic) */

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int), (*real_fdatasync)(int), (*real_close)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);

static const char *how_name(int how) {
    return how == 0 ? "KILL" : how == EIO ? "EIO" : how == EINVAL ? "EINVAL" : "ENOSPC";
}

static void log_hit(int op, long k, int how) {
    const char *path = getenv("DLLM_FAIL_LOG");
    if (!path) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s %ld %s\n", OP_NAME[op], k, how_name(how));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) { (void)real_write(fd, line, (size_t)n); real_close(fd); }
}

/* Count one call of op; 1 when this is a call to fail (or kill: no return). */
static int hit(int op) {
    long k = __atomic_add_fetch(&counts[op], 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < n_specs; i++)
        if (spec[i].op == op && spec[i].k == k) {
            log_hit(op, k, spec[i].how);
            if (spec[i].how == 0) raise(SIGKILL);
            errno = spec[i].how;
            return 1;
        }
    return 0;
}

static int regular(int fd, int writable_only) {
    struct stat st;
    if (fd <= 2 || fstat(fd, &st) || !S_ISREG(st.st_mode)) return 0;
    if (!writable_only) return 1;
    if (st.st_nlink == 0) return 0;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

static void write_counts(void) {
    const char *path = getenv("DLLM_FAIL_COUNT");
    if (!path) return;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "write %ld\nfsync %ld\nrename %ld\nclose %ld\n", counts[OP_WRITE],
                     counts[OP_FSYNC], counts[OP_RENAME], counts[OP_CLOSE]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) { (void)real_write(fd, buf, (size_t)n); real_close(fd); }
}

__attribute__((constructor)) static void inject_init(void) {
    real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    real_renameat2 = (int (*)(int, const char *, int, const char *, unsigned))dlsym(RTLD_NEXT, "renameat2");
    const char *env = getenv("DLLM_FAIL");
    for (const char *p = env; p && *p && n_specs < MAX_SPECS + 1; p = strchr(p, ',') ? strchr(p, ',') + 1 : "") {
        char op[16] = "", how[16] = "";
        long k = 0;
        int got = sscanf(p, "%15[a-z]:%ld:%15[A-Z]", op, &k, how), ok = got >= 2 && k > 0 && n_specs < MAX_SPECS;
        int o = -1;
        for (int i = 0; i < N_OPS; i++)
            if (!strcmp(op, OP_NAME[i])) o = i;
        int h = got < 3 || !strcmp(how, "ENOSPC") ? ENOSPC : !strcmp(how, "EIO") ? EIO : !strcmp(how, "EINVAL") ? EINVAL
              : !strcmp(how, "KILL") ? 0 : -1;
        if (!ok || o < 0 || h < 0) {
            static const char msg[] = "inject.so: bad DLLM_FAIL (want OP:K[:ENOSPC|EIO|EINVAL|KILL][,...], at most 4)\n";
            (void)real_write(2, msg, sizeof msg - 1);
            _exit(99);
        }
        spec[n_specs].op = o; spec[n_specs].k = k; spec[n_specs].how = h;
        n_specs++;
    }
    if (getenv("DLLM_FAIL_COUNT")) atexit(write_counts);
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (regular(fd, 0) && hit(OP_WRITE)) return -1;
    return real_write(fd, buf, n);
}

int fsync(int fd) { return hit(OP_FSYNC) ? -1 : real_fsync(fd); }
int fdatasync(int fd) { return hit(OP_FSYNC) ? -1 : real_fdatasync(fd); }

int rename(const char *a, const char *b) { return hit(OP_RENAME) ? -1 : real_rename(a, b); }
int renameat(int da, const char *a, int db, const char *b) {
    return hit(OP_RENAME) ? -1 : real_renameat(da, a, db, b);
}
int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    return hit(OP_RENAME) ? -1 : real_renameat2(da, a, db, b, flags);
}

int close(int fd) {
    if (regular(fd, 1) && hit(OP_CLOSE)) {
        int e = errno;
        real_close(fd);
        errno = e;
        return -1;
    }
    return real_close(fd);
}
