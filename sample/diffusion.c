/* diffusion.c — the masked-diffusion sampler of ALGORITHMS.md §3 (LLaDA's
 * generate(), Fast-dLLM's threshold rule, Dream's diffusion_generate algs)
 * over a batch of rows, each with its own canvas, prompt length and schedule.
 *
 * Per row:
 *   canvas   [prompt | G x mask], L = n_prompt + G.
 *   region   [n_prompt, L); when the prompt holds mask ids (infilling) the
 *            whole canvas [0, L): blocks tile it from position 0.
 *   blocks   of block_length Bk (0 = the whole region), nb = ceil(region/Bk);
 *            steps per block spb = S / nb (generation: main checks that G %
 *            Bk == 0 and S % nb == 0 as LLaDA asserts; infilling rounds up).
 *            S = --steps, or when 0: G (generation) / the canvas' mask count
 *            (infilling).  A block without masks at its start is skipped
 *            (no steps, no noise).
 *   llada    (default): at a block's start n = its mask count; step i of
 *            the block commits k_i = n / spb (+1 for i < n % spb) positions
 *            (LLaDA get_num_transfer_tokens).  A step with k_i = 0 is not
 *            run (no forward, no noise).  Candidates and confidences
 *            (sample.h) at the block's masked positions only; the k_i most
 *            confident are committed (ties: lower position first, where
 *            torch.topk leaves the order unspecified); with --alg-temp a > 0
 *            the k_i largest conf/a - log(-log u) instead (sampling without
 *            replacement from softmax(conf/a), Dream's alg_temp).
 *   dream    (--alg maskgit_plus | topk_margin | entropy: Dream's _sample in
 *            generation_utils.py): step i of a block (i < spb), with t, s =
 *            entries i, i+1 of torch.linspace(1, eps, spb + 1) in float32
 *            (dream_grid), commits k_i = int(m (1 - s/t)) positions, m = the
 *            block's masks now (all of them at the block's last step),
 *            float32 arithmetic as Dream's tensors; k_i = 0: no forward, no
 *            noise (Dream runs the forward and commits nothing).  Candidates
 *            and confidences from DL_SEL_DREAM (its sample_tokens: top-p, top-k
 *            and temperature shape the confidence); the k_i most confident,
 *            or with --alg-temp as llada.  With one block, no CFG and
 *            temperature 0 these are Dream's ids (tests/cli/family.sh).
 *   threshold (--threshold tau, Fast-dLLM): every step commits each masked
 *            position of the block with confidence >= tau, and at least the
 *            most confident; the block ends when it has no mask left.
 *   origin   (Dream): step i of a block (i < spb) with t = 1 - i(1-eps)/spb,
 *            s = 1 - (i+1)(1-eps)/spb reveals each masked position of the
 *            block with probability 1 - s/t (1 at the block's last step):
 *            u[pos] < p.  A step revealing nothing runs no forward.  The
 *            revealed positions get their candidate (confidence reported:
 *            p(candidate)).
 *   CFG      (--cfg w): a second set of rows with every non-mask prompt
 *            position replaced by the mask; logits = un + (w+1)(cond - un).
 *   shift    (checkpoint shift_logits): position i reads hidden i-1
 *            (position 0 reads hidden 0, as Dream).
 *   bd3      (a block-diffusion checkpoint, BD3LM, block size Bd): blocks
 *            are the model's attention blocks [k Bd, (k+1) Bd) clipped to the
 *            region (the first may be partial when the prompt ends inside
 *            one); every forward is block-causal (DL_ATTN_BLOCK, Bd), so the
 *            current block sees itself and the finished blocks before it,
 *            the clean prefix as in training's x_0 half.  --cache (prefix or
 *            dual alike) is then EXACT (bd3_forward): finished blocks' keys /
 *            values are computed once, block by block, each attending to the
 *            cache before it and itself, and the current block's steps run
 *            as a window [block start, block end) over that cache.
 * Steps of all rows run in lockstep: each iteration gives every unfinished
 * row its next step, and one forward serves all rows that run one.
 * Trace "step" = the step's index in the row's schedule (blocks x spb; for
 * --threshold the count of steps run so far); "nfe" = forwards of the row.
 *
 * Speed: the head is computed only at the positions that can change this
 * step; candidates and confidences come from one token-selection call on
 * the device (share/model/dl_select.h, with the device's threads), so only
 * (token, confidence) pairs reach the host, never the logits; the noise is
 * drawn there from (seed, prompt index, uniform index), and only --noise
 * FILE uploads uniforms (the step's reserved range).  All buffers are
 * allocated once per batch.
 *
 * Does not: trim at EOS before the end (the schedule always completes, then
 * smp_trim_eos), read or write streams (main.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "dl_batch.h"
#include "dl_rng.h"
#include "dl_select.h"
#include "sample.h"

typedef struct {
    int L, r0, bk, nb, spb;   /* canvas, region start, block length, blocks, steps per block */
    int blk, i;               /* current block, step within it (next to run) */
    int blk_lo, blk_hi;       /* current block's positions */
    int started;              /* current block's schedule computed */
    int done, taken;          /* finished; threshold: steps run */
    int *sched;               /* (spb) llada transfer counts */
    int run;                  /* runs a step this iteration */
    int step;                 /* that step's trace index */
    int fb;                   /* its row in the forward batch */
    int npos;                 /* positions computed */
    int *pos;                 /* (L) those positions */
    uint64_t gum, rnd, atu;   /* noise indices of this step's Gumbel / random / alg-temp uniforms */
    int has_gum, has_rnd, has_atu;
    int cblk;                 /* --cache: block whose start refreshed the cache (-1: none yet) */
    int base;                 /* blocks start at base + k*bk, clipped to >= r0 (bd3: r0 rounded down to Bd) */
    int cfill;                /* bd3 --cache: positions [0, cfill) hold clean keys / values */
    int wlo, whi;             /* --cache: this step's window [wlo, whi) */
} rowst;

static int is_infill(const smp_row *r, uint32_t mask_id) {
    for (int i = 0; i < r->n_prompt; i++)
        if (r->ids[i] == mask_id) return 1;
    return 0;
}

static int is_dream(smp_alg a) { return a == SMP_ALG_MASKGIT_PLUS || a == SMP_ALG_TOPK_MARGIN || a == SMP_ALG_ENTROPY; }

/* Entry j of torch.linspace(1, eps, S + 1) (float32): torch's CPU kernel
 * computes start + step * j below the halfway index and end - step * (S - j)
 * from it, each as one fused multiply-add (equal to torch 2.x's values for
 * every S < 2100 and eps 1e-3, 1e-2, 0.05: tests/ref/gen_family_fixtures.py). */
static float dream_grid(int j, int S, double eps) {
    const float start = 1.0f, end = (float)eps, step = (end - start) / (float)S;
    return j < (S + 1) / 2 ? fmaf(step, (float)j, start) : fmaf(-step, (float)(S - j), end);
}

/* Dream's number_transfer_tokens at step i of S with m masks left:
 * int(m * (1 - s / t)) in float32 (its timesteps and mask count are float32
 * tensors), all m at the last step. */
int smp_dream_transfer(int m, int i, int S, double eps) {
    if (i >= S - 1) return m;
    float t = dream_grid(i, S, eps), sn = dream_grid(i + 1, S, eps);
    float frac = 1.0f - sn / t;
    return (int)((float)m * frac);
}

static int count_masks(const uint32_t *ids, int lo, int hi, uint32_t mask_id) {
    int n = 0;
    for (int i = lo; i < hi; i++) n += ids[i] == mask_id;
    return n;
}

void smp_trace_line(FILE *f, uint64_t row, int step, int nfe, int block, const int32_t *pos,
                    const uint32_t *tok, const double *conf, int n) {
    fprintf(f, "{\"row\":%llu,\"step\":%d,\"nfe\":%d,\"block\":%d,\"committed\":[", (unsigned long long)row,
            step, nfe, block);
    for (int j = 0; j < n; j++) {
        double c = conf[j];
        if (isfinite(c)) fprintf(f, "%s[%d,%u,%.9g]", j ? "," : "", pos[j], tok[j], c);
        else fprintf(f, "%s[%d,%u,null]", j ? "," : "", pos[j], tok[j]);
    }
    fputs("]}\n", f);
}

void smp_trim_eos(const smp_opts *o, smp_row *r) {
    if (o->keep_eos || o->eos_id < 0) return;
    for (int i = r->n_prompt; i < r->len; i++)
        if (r->ids[i] == (uint32_t)o->eos_id) { r->len = i + 1; return; }
}

/* Per-step noise of the llada / threshold rules for one row (sample.h order). */
static void take_step_noise(const smp_opts *o, smp_row *r, rowst *s, int V) {
    s->has_gum = o->temperature > 0;
    s->has_rnd = o->remask == SMP_REMASK_RANDOM;
    s->has_atu = o->alg_temp > 0 && o->threshold <= 0;
    if (s->has_gum) s->gum = smp_noise_take(r->noise, (uint64_t)s->L * V);
    if (s->has_rnd) s->rnd = smp_noise_take(r->noise, (uint64_t)s->L);
    if (s->has_atu) s->atu = smp_noise_take(r->noise, (uint64_t)s->L);
}

/* Move to block s->blk (or the next one with masks); 0 = finished. */
static int enter_block(const smp_opts *o, smp_row *r, rowst *s) {
    for (; s->blk < s->nb; s->blk++) {
        int start = s->base + s->blk * s->bk;
        s->blk_lo = start > s->r0 ? start : s->r0;
        s->blk_hi = start + s->bk < s->L ? start + s->bk : s->L;
        int n = count_masks(r->ids, s->blk_lo, s->blk_hi, o->mask_id);
        if (!n) continue;
        s->i = 0;
        s->started = 1;
        if (o->alg == SMP_ALG_LLADA && o->threshold <= 0)
            for (int j = 0; j < s->spb; j++) s->sched[j] = n / s->spb + (j < n % s->spb);
        return 1;
    }
    s->done = 1;
    return 0;
}

/* Find this row's next step to run; sets s->run, s->pos / npos, the noise.
 * Origin steps that reveal nothing are passed over here. */
static void advance(const smp_opts *o, smp_row *r, rowst *s, int V, double *ubuf) {
    s->run = 0;
    while (!s->done) {
        if (!s->started && !enter_block(o, r, s)) return;
        if (o->threshold > 0 && o->alg == SMP_ALG_LLADA) {
            if (!count_masks(r->ids, s->blk_lo, s->blk_hi, o->mask_id)) { s->started = 0; s->blk++; continue; }
            s->npos = 0;
            for (int p = s->blk_lo; p < s->blk_hi; p++)
                if (r->ids[p] == o->mask_id) s->pos[s->npos++] = p;
            take_step_noise(o, r, s, V);
            s->step = s->taken;
            s->run = 1;
            return;
        }
        if (s->i >= s->spb) { s->started = 0; s->blk++; continue; }
        int i = s->i++;
        s->step = s->blk * s->spb + i;
        if (is_dream(o->alg))
            s->sched[i] = smp_dream_transfer(count_masks(r->ids, s->blk_lo, s->blk_hi, o->mask_id), i, s->spb, o->eps);
        if (o->alg != SMP_ALG_ORIGIN) {
            if (s->sched[i] == 0) continue;
            s->npos = 0;
            for (int p = s->blk_lo; p < s->blk_hi; p++)
                if (r->ids[p] == o->mask_id) s->pos[s->npos++] = p;
            take_step_noise(o, r, s, V);
            s->run = 1;
            return;
        }
        /* origin */
        double t = 1.0 - (double)i * (1.0 - o->eps) / s->spb;
        double sn = 1.0 - (double)(i + 1) * (1.0 - o->eps) / s->spb;
        double pt = i < s->spb - 1 ? 1.0 - sn / t : 1.0;
        uint64_t d0 = smp_noise_take(r->noise, (uint64_t)s->L);
        smp_noise_fill(r->noise, d0 + s->blk_lo, (size_t)(s->blk_hi - s->blk_lo), ubuf);
        s->npos = 0;
        for (int p = s->blk_lo; p < s->blk_hi; p++)
            if (r->ids[p] == o->mask_id && ubuf[p - s->blk_lo] < pt) s->pos[s->npos++] = p;
        if (!s->npos) continue;
        s->has_gum = o->temperature > 0;
        s->has_rnd = s->has_atu = 0;
        if (s->has_gum) s->gum = smp_noise_take(r->noise, (uint64_t)s->L * V);
        s->run = 1;
        return;
    }
}

typedef struct { double key; int pos; } cand_t;
static int cand_cmp(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->key > y->key) return -1;
    if (x->key < y->key) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* --cache prefix | dual: this step's forward as a window over each row's
 * cache (dl_model_forward_window).  A row's first step in a block (and its
 * very first step) refreshes: window [0, L), every position's keys / values
 * recomputed and stored.  Later steps of the block: prefix = [block start,
 * L) (the prompt and finished blocks read from the cache), dual = [block
 * start, block end) (the suffix too).  With shift_logits the window starts
 * one earlier (the block's first position reads the hidden state before
 * it).  Cache row f*n + b (f = 1: the CFG row); bt->sel, built for the full
 * forward's (row, position) layout, is mapped to window slots. */
static int window_forward(dl_model *m, dl_dcache *dc, const smp_opts *o, const smp_row *rows, rowst *st, int n,
                          int B, int M, int nf, const dl_batch *bt, uint32_t *wids, int32_t *wrows, int32_t *wq0,
                          int32_t *wnv, int32_t *wkeys, int32_t *wsel, const float **logits, char *err,
                          size_t errlen) {
    int W = 1;
    for (int b = 0; b < n; b++) {
        rowst *s = &st[b];
        if (!s->run) continue;
        int refresh = s->cblk != s->blk;
        s->wlo = refresh ? 0 : s->blk_lo - (o->shift_logits && s->blk_lo > 0);
        s->whi = refresh || o->cache == SMP_CACHE_PREFIX ? s->L : s->blk_hi;
        s->cblk = s->blk;
        if (s->whi - s->wlo > W) W = s->whi - s->wlo;
    }
    int T = 0;   /* the full forward's row stride that bt->sel was built for */
    for (int b = 0; b < n; b++)
        if (st[b].run && st[b].L > T) T = st[b].L;
    for (int b = 0; b < n; b++) {
        const rowst *s = &st[b];
        if (!s->run) continue;
        const smp_row *r = &rows[b];
        for (int f = 0; f < nf; f++) {
            int fr = f * B + s->fb, w = s->whi - s->wlo;
            wrows[fr] = f * n + b;
            wq0[fr] = s->wlo;
            wnv[fr] = w;
            wkeys[fr] = s->L;
            uint32_t *dst = wids + (size_t)fr * W;
            for (int j = 0; j < W; j++) {
                int p = s->wlo + j;
                dst[j] = j < w && !(f == 1 && p < r->n_prompt) ? r->ids[p] : o->mask_id;
            }
        }
    }
    for (int q = 0; q < nf * M; q++) {   /* full layout fr*T + h -> window slot fr*W + (h - wlo) */
        int fr = bt->sel[q] / T, h = bt->sel[q] % T;
        int b = wrows[fr] % n;
        wsel[q] = fr * W + (h - st[b].wlo);
    }
    return dl_model_forward_window(m, dc, wids, nf * B, W, wrows, wq0, wnv, wkeys, wsel, nf * M, logits, err, errlen);
}

/* Forward row fr's window ids: canvas [q0, q0 + w) padded to W with the
 * mask (the CFG row f = 1 has its prompt masked too). */
static void window_ids(uint32_t *dst, const smp_opts *o, const smp_row *r, int f, int q0, int w, int W) {
    for (int j = 0; j < W; j++) {
        int p = q0 + j;
        dst[j] = j < w && !(f == 1 && p < r->n_prompt) ? r->ids[p] : o->mask_id;
    }
}

/* --cache with a block-diffusion checkpoint (o->bd3 = Bd): the exact cache.
 *  1. clean passes: while a running row's cache ends before its current
 *     attention block (cfill < cb = blk_lo rounded down to Bd), one window
 *     [cfill, cfill + Bd) per such row with n_keys = its end: the block's
 *     clean keys / values, attending to the clean cache before it and to
 *     itself, exactly the block-causal forward's (no logits: M = 0);
 *  2. the step: window [cb, blk_hi) of every running row, n_keys = blk_hi:
 *     the current block sees itself and the clean cache [0, cb), as the
 *     block-causal full forward does (later blocks are invisible there).
 * Its writes into [cb, blk_hi) are overwritten by that block's clean pass
 * once it is finished.  bt->sel (full layout) is mapped to window slots. */
static int bd3_forward(dl_model *m, dl_dcache *dc, const smp_opts *o, const smp_row *rows, rowst *st, int n,
                       int B, int M, int nf, const dl_batch *bt, uint32_t *wids, int32_t *wrows, int32_t *wq0,
                       int32_t *wnv, int32_t *wkeys, int32_t *wsel, const float **logits, char *err, size_t errlen) {
    const int Bd = o->bd3;
    int rc;
    for (;;) {   /* 1 */
        int nr = 0, Wc = 1;
        for (int b = 0; b < n; b++) {
            rowst *s = &st[b];
            if (!s->run || s->cfill >= s->blk_lo / Bd * Bd) continue;
            int w = s->L - s->cfill < Bd ? s->L - s->cfill : Bd;
            if (w > Wc) Wc = w;
            for (int f = 0; f < nf; f++, nr++) {
                wrows[nr] = f * n + b; wq0[nr] = s->cfill; wnv[nr] = w; wkeys[nr] = s->cfill + w;
            }
        }
        if (!nr) break;
        for (int k = 0; k < nr; k++) {
            int b = wrows[k] % n;
            window_ids(wids + (size_t)k * Wc, o, &rows[b], wrows[k] / n, wq0[k], wnv[k], Wc);
            st[b].cfill = wkeys[k];
        }
        const float *unused;
        if ((rc = dl_model_forward_window(m, dc, wids, nr, Wc, wrows, wq0, wnv, wkeys, wsel, 0, &unused, err,
                                          errlen)))
            return rc;
    }
    int W = 1, T = 0;   /* 2; T: the full forward's row stride that bt->sel was built for */
    for (int b = 0; b < n; b++) {
        rowst *s = &st[b];
        if (!s->run) continue;
        s->wlo = s->blk_lo / Bd * Bd;
        s->whi = s->blk_hi;
        if (s->whi - s->wlo > W) W = s->whi - s->wlo;
        if (s->L > T) T = s->L;
    }
    for (int b = 0; b < n; b++) {
        const rowst *s = &st[b];
        if (!s->run) continue;
        for (int f = 0; f < nf; f++) {
            int fr = f * B + s->fb;
            wrows[fr] = f * n + b; wq0[fr] = s->wlo; wnv[fr] = s->whi - s->wlo; wkeys[fr] = s->whi;
            window_ids(wids + (size_t)fr * W, o, &rows[b], f, s->wlo, s->whi - s->wlo, W);
        }
    }
    for (int q = 0; q < nf * M; q++) {
        int fr = bt->sel[q] / T, h = bt->sel[q] % T;
        wsel[q] = fr * W + (h - st[wrows[fr] % n].wlo);
    }
    return dl_model_forward_window(m, dc, wids, nf * B, W, wrows, wq0, wnv, wkeys, wsel, nf * M, logits, err, errlen);
}

int smp_diffusion_batch(dl_model *m, const smp_opts *o, smp_row *rows, int n, char *err, size_t errlen) {
    const int V = m->cfg.vocab_size;
    const int cfg_on = o->cfg != 0;
    const int nf = cfg_on ? 2 : 1;
    int rc = 0;
    int Tmax = 0;
    rowst *st = calloc((size_t)n, sizeof *st);
    if (!st) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int Mmax = 0;
    for (int b = 0; b < n; b++) {
        smp_row *r = &rows[b];
        rowst *s = &st[b];
        s->L = r->n_prompt + o->gen_length;
        int infill = is_infill(r, o->mask_id);
        for (int i = r->n_prompt; i < s->L; i++) r->ids[i] = o->mask_id;
        r->len = s->L;
        r->nfe = r->steps = 0;
        s->r0 = infill ? 0 : r->n_prompt;
        int region = s->L - s->r0;
        s->bk = o->block_length > 0 && o->block_length < region ? o->block_length : region;
        s->base = s->r0;
        if (o->bd3 > 0) { s->bk = o->bd3; s->base = s->r0 / o->bd3 * o->bd3; region = s->L - s->base; }
        s->nb = region > 0 ? (region + s->bk - 1) / s->bk : 0;
        int S = o->steps > 0 ? o->steps : infill ? count_masks(r->ids, 0, s->L, o->mask_id) : o->gen_length;
        s->spb = s->nb ? (S + s->nb - 1) / s->nb : 1;
        if (s->spb < 1) s->spb = 1;
        if (!s->nb) s->done = 1;
        s->cblk = -1;
        if (s->L > Tmax) Tmax = s->L;
        Mmax += s->bk;
        s->sched = malloc((size_t)s->spb * sizeof *s->sched);
        s->pos = malloc((size_t)s->L * sizeof *s->pos);
        if (!s->sched || !s->pos) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto out; }
    }
    if (Tmax == 0) goto out;

    size_t NB = (size_t)nf * n * Tmax;
    dl_batch bt = { 0 };
    dl_selector sel = { 0 };
    dl_select_cfg scfg = {
        .draw = is_dream(o->alg) ? DL_SEL_DREAM : o->temperature > 0 ? DL_SEL_GUMBEL : DL_SEL_ARGMAX,
        .conf = o->alg == SMP_ALG_TOPK_MARGIN ? DL_CONF_MARGIN : o->alg == SMP_ALG_ENTROPY ? DL_CONF_NEGENT
                : o->alg == SMP_ALG_ORIGIN || o->alg == SMP_ALG_MASKGIT_PLUS || o->remask == SMP_REMASK_LOWCONF ? DL_CONF_PROB
                : o->remask == SMP_REMASK_RANDOM ? DL_CONF_NONE
                : o->remask == SMP_REMASK_MARGIN ? DL_CONF_MARGIN : DL_CONF_NEGENT,
        .temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p, .cfg = o->cfg,
        .suppress = o->suppress, .n_suppress = o->n_suppress, .mask_id = o->mask_id, .purpose = DL_RNG_SAMPLE,
    };
    uint32_t *cand = malloc((size_t)Mmax * sizeof *cand);
    double *conf = malloc((size_t)Mmax * sizeof *conf);
    cand_t *ck = malloc((size_t)Tmax * sizeof *ck);
    int32_t *cpos = malloc((size_t)Tmax * sizeof *cpos);
    uint32_t *ctok = malloc((size_t)Tmax * sizeof *ctok);
    double *cconf = malloc((size_t)Tmax * sizeof *cconf);
    double *ubuf = malloc((size_t)Tmax * sizeof *ubuf);
    uint8_t *newm = calloc((size_t)Tmax, 1);
    int *moff = malloc((size_t)n * sizeof *moff);
    int *mrow = malloc((size_t)Mmax * sizeof *mrow);
    double *fnoise = NULL;   /* --noise FILE: the step's reserved uniforms, uploaded */
    /* --cache: the cache and the window forward's host inputs */
    dl_dcache *dc = NULL;
    const int R = nf * n;
    uint32_t *wids = NULL;
    int32_t *wrows = NULL, *wq0 = NULL, *wnv = NULL, *wkeys = NULL, *wsel = NULL;
    if (o->cache != SMP_CACHE_NONE) {
        wids = malloc((size_t)R * Tmax * sizeof *wids);
        wrows = malloc((size_t)R * 4 * sizeof *wrows);
        wsel = malloc((size_t)nf * Mmax * sizeof *wsel);
        if (!wids || !wrows || !wsel) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto free_all; }
        wq0 = wrows + R; wnv = wq0 + R; wkeys = wnv + R;
        if ((rc = dl_model_dcache_init(&dc, m, R, Tmax, R, nf * Mmax, err, errlen))) goto free_all;
    }
    int ok = cand && conf && ck && cpos && ctok && cconf && ubuf && newm && moff && mrow;
    if (!ok) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory for a batch of %d rows", n); goto free_all; }
    if ((rc = dl_batch_reserve(&bt, m, nf * n, NB, nf * Mmax, err, errlen)) ||
        (rc = dl_select_init(&sel, m, &scfg, Mmax, 0, err, errlen)) ||
        (rc = dl_model_reserve(m, nf * n, Tmax, nf * Mmax, DL_ACTS_INFER, err, errlen)))
        goto free_all;
    /* the weights stay fixed while sampling: every linear reads a copy packed
     * once (CPU), so a cached step's 32-row block is not dominated by the
     * GEMM packing each weight again; a block's rows then equal the full
     * forward's exactly (kernels/cpu/linear_packed.c) */
    dl_model_pack_weights(m, 1);

    for (;;) {
        /* 1. every unfinished row picks its next step */
        int B = 0, M = 0, T = 0;
        for (int b = 0; b < n; b++) {
            advance(o, &rows[b], &st[b], V, ubuf);
            if (!st[b].run) continue;
            st[b].fb = B++;
            if (st[b].L > T) T = st[b].L;
        }
        for (int b = 0; b < n; b++)
            if (rows[b].noise && (rc = smp_noise_check(rows[b].noise, err, errlen))) goto free_all;
        if (!B) break;

        /* 2. forward input: cond rows then (CFG) uncond rows, right-padded */
        for (int b = 0; b < n; b++) {
            rowst *s = &st[b];
            if (!s->run) continue;
            const smp_row *r = &rows[b];
            for (int f = 0; f < nf; f++) {
                uint32_t *dst = bt.ids + (size_t)(f * B + s->fb) * T;
                memcpy(dst, r->ids, (size_t)s->L * sizeof *dst);
                for (int i = s->L; i < T; i++) dst[i] = o->mask_id;
                if (f == 1)
                    for (int i = 0; i < r->n_prompt; i++) dst[i] = o->mask_id;
                bt.lens[f * B + s->fb] = s->L;
            }
        }
        uint64_t seed = 0, lo = UINT64_MAX, hi = 0;
        const smp_noise *fnz = NULL;
        for (int b = 0; b < n; b++) {
            rowst *s = &st[b];
            if (!s->run) continue;
            moff[b] = M;
            uint64_t stream = 0;
            if (rows[b].noise) {
                smp_noise_key(rows[b].noise, &seed, &stream);
                if (smp_noise_is_file(rows[b].noise)) fnz = rows[b].noise;
            }
            for (int j = 0; j < s->npos; j++) {
                mrow[M + j] = b;
                int p = s->pos[j], h = o->shift_logits ? (p > 0 ? p - 1 : 0) : p;
                bt.sel[M + j] = s->fb * T + h;
                sel.stream[M + j] = stream;
                sel.base[M + j] = s->has_gum ? s->gum + (uint64_t)p * V : 0;
                if (s->has_gum && sel.base[M + j] < lo) lo = sel.base[M + j];
                if (s->has_gum && sel.base[M + j] + V > hi) hi = sel.base[M + j] + V;
            }
            M += s->npos;
        }
        if (cfg_on)
            for (int j = 0; j < M; j++) bt.sel[M + j] = bt.sel[j] + B * T;
        const float *wlogits = NULL;
        if (o->cache == SMP_CACHE_NONE) {
            if ((rc = dl_batch_forward(&bt, nf * B, T, nf * M, 1, 0, o->bd3 > 0 ? DL_ATTN_BLOCK : DL_ATTN_BIDIR,
                                       o->bd3, err, errlen))) goto free_all;
        } else if (o->bd3 > 0) {
            if ((rc = bd3_forward(m, dc, o, rows, st, n, B, M, nf, &bt, wids, wrows, wq0, wnv, wkeys, wsel, &wlogits,
                                  err, errlen))) goto free_all;
        } else if ((rc = window_forward(m, dc, o, rows, st, n, B, M, nf, &bt, wids, wrows, wq0, wnv, wkeys, wsel,
                                        &wlogits, err, errlen))) {
            goto free_all;
        }

        /* 3. candidates and confidences of the M positions, on the device */
        if (fnz && hi > lo) {   /* --noise FILE: upload the uniforms this step reserved */
            free(fnoise);
            fnoise = malloc((size_t)(hi - lo) * sizeof *fnoise);
            if (!fnoise) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory for the noise"); goto free_all; }
            smp_noise_fill(fnz, lo, (size_t)(hi - lo), fnoise);
            if ((rc = dl_select_set_noise(&sel, fnoise, (size_t)(hi - lo), err, errlen))) goto free_all;
            for (int q = 0; q < M; q++)
                if (st[mrow[q]].has_gum) sel.base[q] -= lo;
        }
        if ((rc = wlogits ? dl_select_run_logits(&sel, wlogits, M, seed, err, errlen)
                          : dl_select_run(&sel, M, seed, err, errlen))) goto free_all;
        for (int q = 0; q < M; q++) {
            int b = mrow[q];
            cand[q] = sel.tok[q];
            conf[q] = sel.conf[q];
            if (o->alg != SMP_ALG_ORIGIN && o->remask == SMP_REMASK_RANDOM)
                smp_noise_fill(rows[b].noise, st[b].rnd + (uint64_t)st[b].pos[q - moff[b]], 1, &conf[q]);
        }

        /* 4. commit, trace, show */
        for (int b = 0; b < n; b++) {
            rowst *s = &st[b];
            if (!s->run) continue;
            smp_row *r = &rows[b];
            int base = moff[b], nc = 0;
            for (int j = 0; j < s->npos; j++) {
                ck[j].pos = j;
                ck[j].key = conf[base + j];
                if (s->has_atu) {
                    double u;
                    smp_noise_fill(r->noise, s->atu + (uint64_t)s->pos[j], 1, &u);
                    ck[j].key = conf[base + j] / o->alg_temp - log(-log(u));
                }
                if (isnan(ck[j].key)) ck[j].key = -INFINITY;
            }
            if (o->alg == SMP_ALG_ORIGIN) {
                nc = s->npos;   /* all revealed, in position order */
            } else {
                qsort(ck, (size_t)s->npos, sizeof *ck, cand_cmp);   /* key desc, position asc */
                if (o->threshold > 0) {
                    nc = 1;
                    while (nc < s->npos && ck[nc].key >= o->threshold) nc++;
                } else {
                    nc = s->sched[s->step - s->blk * s->spb];
                    if (nc > s->npos) nc = s->npos;
                }
                /* trace in position order */
                for (int a = 1; a < nc; a++) {
                    cand_t v = ck[a];
                    int q = a - 1;
                    while (q >= 0 && ck[q].pos > v.pos) { ck[q + 1] = ck[q]; q--; }
                    ck[q + 1] = v;
                }
            }
            for (int a = 0; a < nc; a++) {
                int j = ck[a].pos;
                cpos[a] = s->pos[j];
                ctok[a] = cand[base + j];
                cconf[a] = conf[base + j];
                r->ids[cpos[a]] = ctok[a];
            }
            r->nfe += nf;
            r->steps++;
            s->taken++;
            if (o->trace) smp_trace_line(o->trace, r->index, s->step, r->nfe, s->blk, cpos, ctok, cconf, nc);
            if (o->show && b == 0) {
                memset(newm, 0, (size_t)s->L);
                for (int a = 0; a < nc; a++) newm[cpos[a]] = 1;
                show_canvas(o->show, r->ids, s->L, r->n_prompt, newm, r->steps, r->nfe);
            }
        }
    }
    for (int b = 0; b < n; b++) smp_trim_eos(o, &rows[b]);

free_all:
    dl_model_dcache_free(dc);
    free(wids); free(wrows); free(wsel);
    free(fnoise); free(mrow); free(moff); free(newm); free(ubuf); free(cconf); free(ctok); free(cpos); free(ck);
    free(conf); free(cand);
    dl_select_free(&sel);
    dl_batch_free(&bt);
out:
    for (int b = 0; b < n; b++) { free(st[b].sched); free(st[b].pos); }
    free(st);
    return rc;
}
