/* dump_logits.c — run.c's logits for a list of token ids, for the Python tests.
 *
 *   dump_logits MODEL OUT.f32 ID...
 *
 * Feeds ID[0], ID[1], ... at positions 0, 1, ... through run.c's own forward()
 * and writes, for each position, the vocab_size float32 logits it returns
 * (little-endian, row after row) to OUT.f32. The test compiles it against the
 * run.c of the checkout (with its main() left out), so what is compared is
 * exactly the code ./run executes.
 *
 *   cc -O2 -I. -o dump_logits tests/python/dump_logits.c tokenizer.c -lm */
#define RUN_NO_MAIN
#include "run.c"

int main(int argc, char **argv) {
    if (argc < 4) fatal("usage: dump_logits MODEL OUT.f32 ID...");
    Transformer t;
    build_transformer(&t, argv[1]);
    malloc_run_state(&t);
    int n = argc - 3;
    if (n > t.config.seq_len) fatal("%d ids but seq_len is %d", n, t.config.seq_len);
    FILE *out = fopen(argv[2], "wb");
    if (!out) fatal("cannot write %s", argv[2]);
    for (int pos = 0; pos < n; pos++) {
        int id = atoi(argv[3 + pos]);
        if (id < 0 || id >= t.config.vocab_size) fatal("id %d is outside the vocabulary", id);
        const float *logits = forward(&t, id, pos);
        if (fwrite(logits, sizeof(float), (size_t)t.config.vocab_size, out) != (size_t)t.config.vocab_size)
            fatal("cannot write %s", argv[2]);
    }
    if (fclose(out) != 0) fatal("cannot write %s", argv[2]);
    free_transformer(&t);
    return 0;
}
