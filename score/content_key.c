/* score/content_key.c — the Monte-Carlo key of a record taken from its
 * content: sc_content_key(ids, n) = a 64-bit hash of n token ids.
 *
 * Why: a record's draws (dl_rng keyed by seed, key, copy) used to be keyed
 * by its position in the input.  lm-eval sends its requests in its own order
 * (sorted by length, batched), so the same question got other draws through
 * the lm-eval bridge than in dllm-score --task, and the numbers differed
 * (0.55 vs 0.53 on COPA).  Keyed by content, a record draws the same noise
 * wherever it sits: in a file, in a shuffled batch, alone.
 *
 * Rule: h = n; for i = 0..n-1: h = mix64(h ^ (ids[i] + (i+1) * 0x9E3779B97F4A7C15)),
 * mix64 = splitmix64's finaliser.  Callers hash the context (the prompt ids,
 * BOS included; the cut prompt when a context was shortened) for
 * conditional scores, so the options of one multiple-choice question that
 * share their context also share their draws (common random numbers), and
 * all scored ids for an unconditional ELBO.
 *
 * Does not: look at the seed (dl_rng mixes it in), or promise anything
 * about collisions beyond those of a 64-bit mixing hash (two contexts with
 * the same key only share their noise).
 */
#include "score.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sc_content_key(const uint32_t *ids, size_t n) {
    uint64_t h = (uint64_t)n;
    for (size_t i = 0; i < n; i++) h = mix64(h ^ ((uint64_t)ids[i] + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull));
    return h;
}
