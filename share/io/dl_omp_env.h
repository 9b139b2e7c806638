/* dl_omp_env.h — how OpenMP threads wait, settled before libgomp reads it.
 *
 * libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when the library is
 * loaded, so a program that wants another default must re-execute itself
 * with the variable set.  Not here: thread counts (-j/--threads, dl_opts).
 */
#ifndef DL_OMP_ENV_H
#define DL_OMP_ENV_H

/* The spin count used when the user set neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT (docs/bench.md "Shared cores" has the measurements). */
#define DL_OMP_SPINCOUNT "1000"

/* When neither variable is set and DLLM_OMP_REEXEC is not "0": set
 * GOMP_SPINCOUNT=DL_OMP_SPINCOUNT and execv the binary /proc/self/exe
 * names (same pid, fds, arguments, process name).  Returns only when nothing was done or the exec
 * failed (then the environment is left as it was). */
void dl_omp_env_settle(char **argv);

#endif
