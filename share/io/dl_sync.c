/* dl_sync.c — fsync of directories (implements dl_sync.h). */
#include "dl_sync.h"
#include "dl_base.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dl_sync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot open directory to sync: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -errno;
    close(fd);   /* a read-only fd: close reports nothing about the data */
    if (rc) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: directory fsync error: %s", dir, strerror(-rc));
    return 0;
}

int dl_sync_parent(const char *path, char *err, size_t errlen) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) return dl_sync_dir(".", err, errlen);
    size_t n = slash == path ? 1 : (size_t)(slash - path);   /* "/x" -> "/" */
    if (n >= sizeof dir) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = 0;
    return dl_sync_dir(dir, err, errlen);
}
