/* fuzz/fuzz_model.c — libFuzzer target: the model loader, forward() and
 * the sampler (make fuzz; docs/fuzzing.md).
 *
 * An input is 4 bytes of sampler settings, then a model file (lamp float32
 * or int8, llama2.c version 0, 1 or 2). A file the loader accepts runs a
 * prompt through the model and samples a few tokens with the settings:
 *   byte 0  temperature: 0 = greedy, 255 = 1e6 (every logit alike),
 *           else byte / 64
 *   byte 1  top-p = byte / 255 (0 and 1 turn it off)
 *   byte 2  top-k = byte % 8 (0 = off)
 *   byte 3  tokens to sample = 1 + byte % 8; its high bit: run.c's
 *           reference path (Part I, token by token) or the fast one
 *           (Part II, the prompt in one chunk)
 * Every sampled id must be a token of the vocabulary. */
#define RUN_NO_MAIN
#include "run.c"

/* Shapes whose buffers would be huge although the file is small: seq_len
 * and the head counts cost memory but no bytes of the file. */
static int too_big_to_run(const Config *c) {
    size_t padded = (size_t)(c->seq_len + TILE_N - 1) / TILE_N * TILE_N;
    size_t cache = (size_t)c->n_layers * c->n_kv_heads * padded * c->head_dim;
    size_t scores = (size_t)CHUNK * c->n_heads * padded;
    size_t rope = (size_t)c->seq_len * c->head_dim;
    return cache > (1u << 22) || scores > (1u << 22) || rope > (1u << 20);
}

static void load_and_sample(const uint8_t *data, size_t size) {
    if (size < 5) return;
    const uint8_t *knobs = data;
    const char *path = fuzz_scratch_file(0, data + 4, size - 4);
    Transformer t;
    build_transformer(&t, path);
    const Config *c = &t.config;
    if (too_big_to_run(c)) {
        free_transformer(&t);
        return;
    }
    int steps = 1 + knobs[3] % 8, reference = knobs[3] >= 128;
    if (reference) malloc_run_state(&t);
    else malloc_fast_state(&t);

    float temperature = knobs[0] == 0 ? 0.0f : knobs[0] == 255 ? 1e6f : knobs[0] / 64.0f;
    Sampler sampler;
    build_sampler(&sampler, c->vocab_size, temperature, knobs[1] / 255.0f, knobs[2] % 8, 1 + knobs[3]);

    /* the prompt: a text through the model's own tokenizer, or just BOS */
    int n_prompt = 1, bos = c->bos_id >= 0 && c->bos_id < c->vocab_size ? c->bos_id : 0;
    int *prompt = NULL;
    if (t.has_tokenizer) {
        const char *text = "Once upon a time, \xE2\x96\x81 caf\xC3\xA9 \xFF!";
        prompt = tokenizer_encode(&t.tokenizer, text, strlen(text), 1, 0, &n_prompt);
    }
    if (n_prompt == 0 || !prompt) {
        free(prompt);
        prompt = xmalloc(sizeof(int));
        prompt[0] = bos;
        n_prompt = 1;
    }
    if (n_prompt > c->seq_len) n_prompt = c->seq_len;
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= c->vocab_size) abort();   /* encode gave a bad id */

    float *logits = feed_tokens(&t, prompt, n_prompt, 0);
    int token = prompt[n_prompt - 1], pos = n_prompt;
    for (int i = 0; i < steps; i++) {
        int next = sample(&sampler, logits);
        if (next < 0 || next >= c->vocab_size) abort();   /* the sampler picked outside the vocabulary */
        if (t.has_tokenizer) {
            size_t len;
            const char *piece = tokenizer_decode(&t.tokenizer, token, next, &len);
            if (!piece) abort();
        }
        token = next;
        if (pos >= c->seq_len) break;
        logits = feed_tokens(&t, &token, 1, pos++);
    }
    free(prompt);
    free_sampler(&sampler);
    free_transformer(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_run(load_and_sample, data, size, NULL);
    return 0;
}
