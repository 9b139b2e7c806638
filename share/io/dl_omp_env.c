/* dl_omp_env.c — OpenMP's waiting policy for programs on shared cores.
 *
 * Why: at a parallel region's end, libgomp's threads spin before sleeping
 * (by default 300,000 iterations, about 3 ms, unless OMP_WAIT_POLICY says
 * otherwise).  On cores shared with other CPU-bound processes a spinning
 * thread burns the time slice its descheduled partner needs, and our small
 * models run thousands of regions per second: measured on 2 cores, dllm-train
 * fell to 1/4-1/19 of its throughput with two neighbours (issue 15).  Passive
 * waiting (sleep at once) survives neighbours but costs ~10% on a quiet
 * machine (a futex wake per region).  A short spin keeps the quiet speed
 * (partners usually arrive within microseconds) and caps the waste when they
 * do not.  libgomp fixes the policy when it is loaded, before main(), hence
 * the re-exec; the user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT always win.
 * Not here: anything else about threads.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_omp_env.h"

void dl_omp_env_settle(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;   /* the user's choice */
    const char *opt = getenv("DLLM_OMP_REEXEC");
    if (opt && !strcmp(opt, "0")) return;
    /* the binary's own path, not /proc/self/exe: the process name (ps,
     * pkill, top) comes from the path executed */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || !argv || !argv[0]) return;
    self[n] = 0;
    if (setenv("GOMP_SPINCOUNT", DL_OMP_SPINCOUNT, 1)) return;
    /* the re-executed process finds GOMP_SPINCOUNT set and goes on */
    execv(self, argv);
    unsetenv("GOMP_SPINCOUNT");   /* no /proc or no exec: libgomp's defaults */
}
