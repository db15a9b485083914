/* fuzz/fuzz_train.c — libFuzzer target: train.c's training-state and data
 * loaders, then one training step (make fuzz; docs/fuzzing.md).
 *
 * An input is a uint32 n (little-endian), n bytes of a training state
 * (what --resume reads), then a data file: a token shard or text. What
 * loads is split into training and validation tokens as main() does, and
 * trains one step, evaluates once, and samples a few tokens. */
#define TRAIN_NO_MAIN
#include "train.c"

static void free_static_buffers(void) {
    free_scratch();
    gemm_free_buffers();
}

/* Settings that cost memory or time but no bytes of the file (the batch,
 * the accumulation, seq_len) are read from the header first, and an input
 * that would need more than a fuzzer should spend is skipped. */
static int too_big_to_train(const unsigned char *state, size_t size) {
    if (size < 256) return 0;   /* the loader refuses it */
    Config c;
    Hyper h;
    Progress pr;
    DataId d;
    uint64_t tokenizer_size;
    memset(&c, 0, sizeof c);
    state_header((unsigned char *)state, 0, &c, &h, &pr, &d, &tokenizer_size);
    double widest = c.dim > c.hidden_dim ? c.dim : c.hidden_dim;
    widest = widest > c.vocab_size ? widest : c.vocab_size;
    double tokens = (double)h.batch_size * c.seq_len;
    return tokens * h.accum_steps > 4096 || tokens * widest * (c.n_layers + 1) > (1 << 22) ||
           tokens * c.seq_len * c.n_heads > (1 << 22);
}

static void load_and_train(const uint8_t *data, size_t size) {
    if (size < 4) return;
    uint32_t state_size;
    memcpy(&state_size, data, 4);
    if (state_size > size - 4) return;
    const unsigned char *state = data + 4;
    if (too_big_to_train(state, state_size)) return;
    const char *state_path = fuzz_scratch_file(0, state, state_size);
    const char *data_path = fuzz_scratch_file(1, data + 4 + state_size, size - 4 - state_size);

    Model m;
    Tokenizer tok;
    Hyper h;
    Progress pr;
    DataId id;
    load_state(state_path, &m, &h, &pr, &id, &tok);
    TokenSet all = load_tokens(data_path, &tok, id.per_line), train = all, val = {NULL, 0};
    if (id.val_fraction > 0.0f) {   /* as main() splits it */
        size_t n_val = (size_t)((double)all.n * id.val_fraction);
        train.n = all.n - n_val;
        val = (TokenSet){all.ids + train.n, n_val};
    }
    int B = h.batch_size, T = m.config.seq_len;
    if (train.n >= (size_t)T + 1 && pr.step < h.max_steps) {
        if (token_hash(&train) == id.train_hash) pr.step = 0;   /* touch the check main() does */
        int *inputs = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
        float lr;
        train_step(&m, &h, &train, &pr, inputs, targets, &lr, NULL);
        if (val.n >= (size_t)T + 1) evaluate(&m, &val, 1, B, h.seed, inputs, targets);
        print_sample(&m, &tok, 4, h.seed);
        free(inputs);
        free(targets);
    }
    free(all.ids);
    free_model(&m);
    tokenizer_free(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_run(load_and_train, data, size, free_static_buffers);
    return 0;
}
