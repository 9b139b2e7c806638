/* bench/llama2c_model.c — writes a llama2.c-format checkpoint with random
 * weights, for the AR decoding bench (bench/70-ar.sh): the issue-12 model is
 *   llama2c_model OUT.bin  (dim 768, hidden 2048, 12 layers, 12 heads,
 *                           vocab 512, seq_len 256: 85M parameters, 341 MB)
 * or any shape: llama2c_model OUT.bin DIM HIDDEN LAYERS HEADS VOCAB SEQ.
 * Layout (llama2.c run.c memory_map_weights, shared classifier): header of
 * 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len), then float32 embedding (V,D), rms_att (L,D), wq, wk, wv, wo
 * (L,D,D), rms_ffn (L,D), w1 (L,F,D), w2 (L,D,F), w3 (L,F,D), rms_final (D),
 * and the two unused freq_cis tables (seq_len * head_size / 2 each).
 * Matrices: uniform in [-a, a], a = 0.02 * sqrt(3) (std 0.02, xorshift64*
 * seeded with 1: the same file every time); norms: 1.  The embedding row
 * of token 1 (BOS) is zero, so with the tied head its logit is 0 and greedy
 * decoding never emits it: run.c (which stops at BOS) and dllm-sample then
 * both generate the full -n / --gen-length tokens.
 * Does not: write a tokenizer (the bench uses llama2.c's tok512.bin).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t s = 1;
static float urand(void) {   /* xorshift64*, 24 bits -> [-1, 1) */
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return (float)((s * 2685821657736338717ull) >> 40) / 8388608.0f - 1.0f;
}

/* n floats: ones 1 = all 1, -1 = all 0, 0 = random */
static int put(FILE *f, size_t n, int ones) {
    float buf[4096];
    while (n) {
        size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++) buf[i] = ones > 0 ? 1.0f : ones < 0 ? 0.0f : 0.0346410162f * urand();
        if (fwrite(buf, sizeof(float), k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 8) {
        fprintf(stderr, "usage: llama2c_model OUT.bin [DIM HIDDEN LAYERS HEADS VOCAB SEQ]\n");
        return 2;
    }
    int c[7] = { 768, 2048, 12, 12, 12, 512, 256 };
    if (argc == 8) {
        for (int i = 0; i < 5; i++) c[i < 4 ? i : 5] = atoi(argv[2 + i]);
        c[4] = c[3];
        c[6] = atoi(argv[7]);
    }
    size_t D = c[0], F = c[1], L = c[2], V = c[5], hs = D / c[3], T = c[6];
    FILE *f = fopen(argv[1], "wb");
    if (!f) { perror(argv[1]); return 3; }
    int bad = fwrite(c, sizeof(int), 7, f) != 7;
    bad |= put(f, D, 0) | put(f, D, -1) | put(f, (V - 2) * D, 0) | put(f, L * D, 1) | put(f, 4 * L * D * D, 0) | put(f, L * D, 1);
    bad |= put(f, 3 * L * F * D, 0) | put(f, D, 1) | put(f, T * hs, 1);
    bad |= fclose(f) != 0;
    if (bad) { fprintf(stderr, "llama2c_model: write error on %s\n", argv[1]); return 3; }
    return 0;
}
