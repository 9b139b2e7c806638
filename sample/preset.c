/* sample/preset.c — the --preset table (sample/preset.h): each family's
 * published sampling defaults, with the file and line they come from.
 *
 * Sources (read from the repositories' newest snapshots):
 *   LLaDA      github.com/ML-GSAI/LLaDA      b7e6c35 (generate.py, chat.py)
 *   Dream      github.com/DreamLM/Dream      fac0a7f (README.md, demo_completion.py, eval/eval.py)
 *   Fast-dLLM  github.com/NVlabs/Fast-dLLM   24cc59e (llada/eval_gsm8k.sh, llada/chat.py)
 *
 * Prompts: LLaDA's chat.py / generate.py and Dream's README wrap an Instruct
 * model's prompt in the tokenizer's chat template (apply_chat_template with
 * add_generation_prompt); the Base models take raw text.  The rule: a preset
 * sets sampling options only and never turns the chat template on (a Base
 * checkpoint may ship a chat_template too, so its presence does not say
 * "Instruct"); add --chat for Instruct checkpoints (-p TEXT becomes one user
 * turn in the checkpoint's template), or render {"messages": [...]} records
 * with `dllm-tok -t CKPT --chat-template llada|chatml` and pipe the tokens in.
 */
#include "preset.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_base.h"

/* LLaDA generate.py:154 (main): generate(model, input_ids, attention_mask, steps=128,
 * gen_length=128, block_length=32, temperature=0., cfg_scale=0., remasking='low_confidence');
 * chat.py:12-13 gen_length = 128, steps = 128; chat.py:32 the same generate() call. */
static const smp_preset_opt LLADA[] = {
    { "--gen-length", "128", "LLaDA generate.py:154, chat.py:12" },
    { "--steps", "128", "LLaDA generate.py:154, chat.py:13" },
    { "--block-length", "32", "LLaDA generate.py:154, chat.py:32" },
    { "--temperature", "0", "LLaDA generate.py:154, chat.py:32" },
    { "--cfg", "0", "LLaDA generate.py:154 (cfg_scale=0.)" },
    { "--alg", "llada", "LLaDA generate.py:44-109 (the schedule)" },
    { "--remask", "low-confidence", "LLaDA generate.py:154 (remasking='low_confidence')" },
    { NULL, NULL, NULL }
};

/* Dream README.md:49-60 (= demo_completion.py:22-33): model.diffusion_generate(input_ids,
 * max_new_tokens=512, steps=512, temperature=0.2, top_p=0.95, alg="entropy", alg_temp=0.);
 * eps is not passed: DreamGenerationConfig's default 1e-3 (generation_utils.py, the
 * model repository's file; = eval/eval.py:41 sampling_eps).  top_k is not passed (None).
 * --alg entropy is Dream's own alg (sample/diffusion.c): its schedule and its
 * confidence on the tempered top-p distribution. */
static const smp_preset_opt DREAM[] = {
    { "--gen-length", "512", "Dream README.md:52 (max_new_tokens=512)" },
    { "--steps", "512", "Dream README.md:55" },
    { "--block-length", "0", "Dream diffusion_generate has no blocks" },
    { "--temperature", "0.2", "Dream README.md:56" },
    { "--top-p", "0.95", "Dream README.md:57" },
    { "--top-k", "0", "Dream README.md: not passed (None)" },
    { "--alg", "entropy", "Dream README.md:58 (alg=\"entropy\")" },
    { "--alg-temp", "0", "Dream README.md:59" },
    { "--eps", "0.001", "Dream generation_utils.py DreamGenerationConfig (eps=1e-3)" },
    { "--cfg", "0", "Dream: no guidance" },
    { NULL, NULL, NULL }
};

/* Fast-dLLM llada/eval_gsm8k.sh:6-9 length=256, block_length=32, steps=length/block_length;
 * :26 (parallel decoding) threshold=0.9; llada/chat.py:56 temperature=0.,
 * remasking='low_confidence'. */
static const smp_preset_opt FAST_DLLM[] = {
    { "--gen-length", "256", "Fast-dLLM llada/eval_gsm8k.sh:6" },
    { "--block-length", "32", "Fast-dLLM llada/eval_gsm8k.sh:7" },
    { "--steps", "8", "Fast-dLLM llada/eval_gsm8k.sh:9 (length / block_length)" },
    { "--threshold", "0.9", "Fast-dLLM llada/eval_gsm8k.sh:26" },
    { "--temperature", "0", "Fast-dLLM llada/chat.py:56" },
    { "--cfg", "0", "Fast-dLLM llada/generate.py:61 (no cfg_scale)" },
    { "--alg", "llada", "Fast-dLLM llada/generate.py:61-100" },
    { "--remask", "low-confidence", "Fast-dLLM llada/chat.py:56" },
    { NULL, NULL, NULL }
};

static const smp_preset PRESETS[] = {
    { "llada", "LLaDA-8B's generate() / chat.py (ML-GSAI/LLaDA)",
      "the chat template is not turned on: add --chat for LLaDA-8B-Instruct", LLADA },
    { "dream", "Dream-v0-7B's diffusion_generate() example (DreamLM/Dream README)",
      "Dream's torch random stream (temperature 0.2 samples from the same distribution,\n"
      "          not the same ids); steps that commit nothing run no forward; the chat\n"
      "          template is not turned on: add --chat for Dream-v0-Instruct-7B (chatml,\n"
      "          without its template's default system message)", DREAM },
    { "fast-dllm", "Fast-dLLM's parallel decoding on LLaDA (NVlabs/Fast-dLLM, GSM8K script)",
      "the cache is not turned on (eval_gsm8k.sh's \"parallel\" run): add --cache prefix\n"
      "          or --cache dual for its \"prefix / dual cache+parallel\" runs (approximate\n"
      "          caches, as Fast-dLLM's)", FAST_DLLM },
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

const smp_preset *smp_preset_find(const char *name) {
    for (size_t i = 0; i < N_PRESETS; i++)
        if (!strcmp(PRESETS[i].name, name)) return &PRESETS[i];
    return NULL;
}

const char *smp_preset_names(void) { return "llada, dream, fast-dllm"; }

char **smp_preset_argv(const smp_preset *p, int argc, char **argv, int *outc) {
    int n = 0;
    while (p->opts[n].opt) n++;
    char **v = calloc((size_t)argc + 2 * (size_t)n + 1, sizeof *v);
    if (!v) return NULL;
    int k = 0;
    v[k++] = argv[0];
    for (int i = 0; i < n; i++) {
        v[k++] = (char *)p->opts[i].opt;      /* the parser only reads them */
        v[k++] = (char *)p->opts[i].value;
    }
    for (int i = 1; i < argc; i++) v[k++] = argv[i];
    *outc = k;
    return v;
}

char *smp_preset_help(void) {
    dl_strbuf b = { 0 };
    int e = dl_strbuf_puts(&b, "Presets (--preset NAME: a family's published defaults; any other flag overrides them):\n");
    for (size_t i = 0; i < N_PRESETS && !e; i++) {
        const smp_preset *p = &PRESETS[i];
        e |= dl_strbuf_printf(&b, "  %-9s %s\n", p->name, p->about);
        for (const smp_preset_opt *o = p->opts; o->opt && !e; o++) {
            char flag[64];
            snprintf(flag, sizeof flag, "%s %s", o->opt, o->value);
            e |= dl_strbuf_printf(&b, "            %-24s %s\n", flag, o->source);
        }
        if (p->note && !e) e |= dl_strbuf_printf(&b, "          not done: %s\n", p->note);
    }
    if (e) { dl_strbuf_free(&b); return NULL; }
    return b.p;
}
