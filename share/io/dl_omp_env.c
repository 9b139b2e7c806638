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
 * do not.  libgomp fixes the policy when it is initialised, before main(),
 * hence the re-exec; the user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT always
 * win.  Only dllm-tok still runs OpenMP regions (its parallel encoding) and
 * re-executes: the model programs' CPU ops run on kernels/cpu/pool.c,
 * which decides its own waiting (OpenMP only under DLLM_POOL=openmp, the
 * reference, which keeps libgomp's defaults).
 *
 * The early hook runs before libc is initialised (environ is still NULL
 * there, and libc's start-up would replace a setenv'd environment anyway),
 * so it reads the envp it is given, builds the new environment in a static
 * array, and calls only string functions, readlink and execve (no malloc,
 * stdio or environ).  No re-exec when /proc/self/exe is the dynamic loader
 * (a program started as `ld-linux-x86-64.so.2 ./dllm-tok ...`: exec'ing the
 * loader with our argv would run argv[1]).  Under valgrind, set
 * DLLM_OMP_REEXEC=0: the re-executed image would run outside it.
 * Not here: anything else about threads.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_omp_env.h"

#define SPIN_VAR "GOMP_SPINCOUNT="
#define ENV_MAX 4096   /* more variables than this: the hook leaves it to dl_omp_env_settle */

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* 1 when the environment asks for the re-exec; *n = its number of variables */
static int wants_reexec(char *const *env, size_t *n) {
    size_t i = 0;
    for (; env && env[i]; i++) {
        const char *v = env[i];
        if (has_prefix(v, "OMP_WAIT_POLICY=") || has_prefix(v, SPIN_VAR)) return 0;   /* the user's choice */
        if (!strcmp(v, "DLLM_OMP_REEXEC=0")) return 0;
    }
    *n = i;
    return 1;
}

/* exec the path /proc/self/exe points to, not /proc/self/exe itself: the
 * process name (ps, pkill, top) comes from the path executed, and would
 * become "exe".  -1 when unreadable, truncated, or the loader's own path. */
static int self_path(char *buf, size_t len) {
    ssize_t k = readlink("/proc/self/exe", buf, len);
    if (k <= 0 || (size_t)k >= len) return -1;
    buf[k] = 0;
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    return has_prefix(base, "ld-") ? -1 : 0;
}

void dl_omp_env_preinit(int argc, char **argv, char **envp) {
    (void)argc;
    static char *env[ENV_MAX + 2];
    static char self[4096];
    size_t n = 0;
    if (!argv || !argv[0] || !wants_reexec(envp, &n) || n > ENV_MAX || self_path(self, sizeof self)) return;
    if (n) memcpy(env, envp, n * sizeof *env);
    env[n] = SPIN_VAR DL_OMP_SPINCOUNT;
    env[n + 1] = NULL;
    execve(self, argv, env);
}

__attribute__((weak)) const int dl_omp_env_wanted = 0;

/* the programs that use no OpenMP (dllm-cat, -mask, -pack) do not load it */
static int libgomp_loaded(void) {
    void *h = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (h) dlclose(h);   /* NOLOAD counted a reference */
    return h != NULL;
}

void dl_omp_env_settle(char **argv) {
    extern char **environ;
    char self[4096];
    size_t n;
    if (!dl_omp_env_wanted || !argv || !argv[0] || !wants_reexec(environ, &n) || !libgomp_loaded() ||
        self_path(self, sizeof self))
        return;
    if (setenv("GOMP_SPINCOUNT", DL_OMP_SPINCOUNT, 1)) return;
    execv(self, argv);
    unsetenv("GOMP_SPINCOUNT");   /* no exec: libgomp's defaults */
}
