/* tok/tok_train.h — `dllm-tok train`: BPE training (implemented in tok/train.c).
 *
 * tok/main.c dispatches here when argv[1] is "train": it has already called
 * dl_prog_init("dllm-tok", argc, argv) with the full command line (so
 * dl_invocation() is "dllm-tok train ..."), then calls
 * tok_train_main(argc - 1, argv + 1): argv[0] is "train" and options start at
 * argv[1], as dl_opts_parse expects.  Returns the process exit status.
 */
#ifndef TOK_TRAIN_H
#define TOK_TRAIN_H

int tok_train_main(int argc, char **argv);

#endif
