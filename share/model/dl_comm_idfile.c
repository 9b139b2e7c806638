/* dl_comm_idfile.c — hand a small blob (the NCCL unique id) from rank 0 to
 * the other ranks through a shared filesystem, for runs without MPI.
 *
 * File: DIR/.dllm-comm-<key>.id, DIR = DLLM_COMM_DIR or $HOME, key =
 * DLLM_RUN_ID, else SLURM_JOB_ID.SLURM_STEP_ID (+ .SLURM_RESTART_COUNT of a
 * requeued job).  Content: "dllm-comm-id 1 <key> <bytes>\n" then the blob.
 * Rank 0 writes DIR/.dllm-comm-<key>.id.tmp.<pid> and renames it (readers
 * never see half a file); readers poll until it exists, names their key
 * and is not older than their own wait's start minus timeout_s (a file
 * left by an earlier job of the same key), at most timeout_s.
 * Does not: delete the file after the readers read it (the caller does,
 * dl_comm_idfile_remove, once every rank has joined), lock, or retry a
 * partial read (rename makes it impossible).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "dl_base.h"
#include "dl_comm_internal.h"

static int key_of(char *key, size_t len, char *err, size_t errlen) {
    const char *run = getenv("DLLM_RUN_ID"), *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
    const char *rs = getenv("SLURM_RESTART_COUNT");
    if (run && *run) snprintf(key, len, "%s", run);
    else if (job && *job) snprintf(key, len, "%s.%s%s%s", job, step && *step ? step : "x", rs && *rs ? "." : "",
                                   rs && *rs ? rs : "");
    else
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "no job id for the NCCL id file: run under srun "
                         "(SLURM_JOB_ID) or set DLLM_RUN_ID to a value unique to this run");
    for (char *p = key; *p; p++)   /* a key is a file name part */
        if (*p == '/' || *p == ' ' || *p == '\n') *p = '_';
    return 0;
}

int dl_comm_idfile_path(char *path, size_t len, char *err, size_t errlen) {
    char key[200];
    int rc = key_of(key, sizeof key, err, errlen);
    if (rc) return rc;
    const char *dir = getenv("DLLM_COMM_DIR");
    if (!dir || !*dir) dir = getenv("HOME");
    if (!dir || !*dir) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "set DLLM_COMM_DIR to a directory all ranks share");
    snprintf(path, len, "%s/.dllm-comm-%s.id", dir, key);
    return 0;
}

static int write_file(const char *path, const char *key, const void *buf, size_t bytes, char *err, size_t errlen) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", tmp, strerror(errno));
    int bad = fprintf(f, "dllm-comm-id 1 %s %zu\n", key, bytes) < 0 || fwrite(buf, 1, bytes, f) != bytes;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        int e = errno;
        remove(tmp);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", path, strerror(e));
    }
    return 0;
}

/* 1 = read and valid, 0 = not there yet / stale, <0 error. */
static int try_read(const char *path, const char *key, void *buf, size_t bytes, time_t not_before, char *err,
                    size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) || sb.st_mtime < not_before) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char line[512], want[512];
    snprintf(want, sizeof want, "dllm-comm-id 1 %s %zu\n", key, bytes);
    int ok = fgets(line, sizeof line, f) && !strcmp(line, want) && fread(buf, 1, bytes, f) == bytes;
    fclose(f);
    if (!ok) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: not an id file of this run (key %s, %zu bytes)", path,
                              key, bytes);
    return 1;
}

int dl_comm_idfile_exchange(int rank, void *buf, size_t bytes, double timeout_s, char *err, size_t errlen) {
    char path[1024], key[200];
    int rc = dl_comm_idfile_path(path, sizeof path, err, errlen);
    if (rc || (rc = key_of(key, sizeof key, err, errlen))) return rc;
    if (rank == 0) {
        remove(path);   /* our own key's file from an earlier attempt */
        return write_file(path, key, buf, bytes, err, errlen);
    }
    double t0 = dl_comm_now();
    time_t not_before = time(NULL) - (time_t)timeout_s;
    unsigned it = 0;
    for (;;) {
        rc = try_read(path, key, buf, bytes, not_before, err, errlen);
        if (rc) return rc < 0 ? rc : 0;
        if (dl_comm_now() - t0 > timeout_s)
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "rank %d: waited %.0f s for rank 0's NCCL id in %s: rank 0 "
                             "did not start, or DLLM_COMM_DIR is not shared by all nodes", rank, timeout_s, path);
        dl_comm_poll_pause(&it);
        if (it > 1024) {   /* a shared filesystem: poll every 50 ms, not every 1 ms */
            struct timespec ts = { 0, 50000000 };
            nanosleep(&ts, NULL);
        }
    }
}
