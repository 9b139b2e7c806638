/* dl_omp_env.h — how OpenMP threads wait, settled before libgomp reads it.
 *
 * libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when the library is
 * initialised, so a program that wants another default must re-execute
 * itself with the variable set.  Not here: thread counts (-j/--threads,
 * dl_opts).
 */
#ifndef DL_OMP_ENV_H
#define DL_OMP_ENV_H

/* The spin count used when the user set neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT (docs/bench.md "Shared cores" has the measurements). */
#define DL_OMP_SPINCOUNT "1000"

/* The re-exec, done as early as a process can.  A program that uses OpenMP
 * writes `DL_OMP_ENV_EARLY;` once, at file scope in its main.c: that puts
 * dl_omp_env_preinit in the executable's .preinit_array, which glibc's
 * loader runs, with (argc, argv, envp), after mapping and relocating the
 * libraries but before any of their constructors (libgomp's, which reads
 * the variables).  So the first image costs only the loading, and libgomp
 * starts once (OMP_DISPLAY_ENV prints one block).  When neither variable is
 * set and DLLM_OMP_REEXEC is not "0", it execve's the binary /proc/self/exe
 * names (same pid, fds, arguments, process name) with
 * GOMP_SPINCOUNT=DL_OMP_SPINCOUNT added to the environment.  It returns when
 * nothing was to be done or the exec failed, and then the program starts as
 * it is.
 * Loaders that ignore .preinit_array (musl) leave it to dl_omp_env_settle. */
void dl_omp_env_preinit(int argc, char **argv, char **envp);
/* 1 in programs that wrote DL_OMP_ENV_EARLY (their definition overrides
 * the library's weak 0): only they re-execute, early or late. */
extern const int dl_omp_env_wanted;
#define DL_OMP_ENV_EARLY \
    const int dl_omp_env_wanted = 1; \
    __attribute__((section(".preinit_array"), used)) static void (*const dl_omp_env_early_)(int, char **, char **) = \
        dl_omp_env_preinit

/* The same decision from main(), through environ (dl_prog_init calls it),
 * in programs with DL_OMP_ENV_EARLY that loaded libgomp: does the re-exec
 * when the early hook did not run (a loader without .preinit_array) and
 * nothing otherwise, since the re-executed image finds GOMP_SPINCOUNT set.  Returns only when nothing was done or the exec failed
 * (then the environment is as it was). */
void dl_omp_env_settle(char **argv);

#endif
