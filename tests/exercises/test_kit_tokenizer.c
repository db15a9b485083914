/* test_kit_tokenizer.c — the check of the re-implement exercise bpe-train
 * (docs/exercises.md): the merge step of tokenizer.c's BPE trainer.
 *
 * tokenizer_train learns 600 pieces from tests/golden/exercises/kit/
 * bpe-text.txt (300 lines of TinyStories) with SentencePiece's options;
 * sentencepiece itself learned the golden vocabulary from the same text
 * (tests/golden/gen_exercise_kit.py). On this text lamp's trainer and
 * sentencepiece's agree piece for piece, in order. */
#include "tests/testutil.h"
#include "tokenizer.h"

#define KIT_DIR "tests/golden/exercises/kit/"
#define N_FIXED 259     /* <unk>, <s>, </s> and the 256 byte pieces come first */

typedef struct {
    int vocab_size, n_pieces, n_lines;
    char **pieces;      /* the learned pieces, from id 259 on, ' ' for '▁' */
    int **encoded;      /* sentencepiece's ids of the first lines */
    int *n_encoded;
} BpeGolden;

static int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static BpeGolden read_bpe_golden(void) {
    BpeGolden g = {0};
    size_t size;
    char *text = slurp(KIT_DIR "bpe.txt", &size);
    ck_assert_msg(text != NULL, "missing golden " KIT_DIR "bpe.txt (tests/golden/gen_exercise_kit.py)");
    g.pieces = calloc(1024, sizeof(char *));
    g.encoded = calloc(64, sizeof(int *));
    g.n_encoded = calloc(64, sizeof(int));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "vocab_size %d", &g.vocab_size) == 1) continue;
        if (strncmp(line, "piece ", 6) == 0) {
            const char *hex = line + 6;
            size_t n = strcspn(hex, " ") / 2;
            char *p = malloc(n + 1);
            for (size_t i = 0; i < n; i++) p[i] = (char)(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
            p[n] = '\0';
            ck_assert_int_lt(g.n_pieces, 1024);
            g.pieces[g.n_pieces++] = p;
        } else if (strncmp(line, "encoded ", 8) == 0) {
            char *end;
            int n = (int)strtol(line + 8, &end, 10);
            ck_assert_int_lt(g.n_lines, 64);
            g.encoded[g.n_lines] = malloc(sizeof(int) * (size_t)(n + 1));
            for (int i = 0; i < n; i++) g.encoded[g.n_lines][i] = (int)strtol(end, &end, 10);
            g.n_encoded[g.n_lines++] = n;
        }
    }
    free(text);
    return g;
}

/* Train lamp's tokenizer on the golden's text, as gen_exercise_kit.py
 * trained sentencepiece. */
static Tokenizer train_on_golden_text(const BpeGolden *g, char **text_out, size_t *len_out) {
    size_t len;
    char *text = slurp(KIT_DIR "bpe-text.txt", &len);
    ck_assert_msg(text != NULL, "missing " KIT_DIR "bpe-text.txt");
    TrainOptions options = {0};
    options.vocab_size = g->vocab_size;
    options.character_coverage = 0.9995;
    Tokenizer t;
    tokenizer_train(&t, text, len, &options, "bpe-text.txt", NULL);
    *text_out = text;
    *len_out = len;
    return t;
}

/* A piece as people read it: '▁' for the space. */
static const char *readable(const char *piece, char *buf, size_t size) {
    size_t n = 0;
    for (const char *p = piece; *p && n + 4 < size; p++) {
        if (*p == ' ') { memcpy(buf + n, "\xE2\x96\x81", 3); n += 3; }
        else buf[n++] = *p;
    }
    buf[n] = '\0';
    return buf;
}

/* The first learned piece that differs, up to `limit`; -1 if none. */
static int first_difference(const Tokenizer *t, const BpeGolden *g, int limit) {
    for (int k = 0; k < limit && k < g->n_pieces; k++)
        if (strcmp(t->pieces[N_FIXED + k], g->pieces[k]) != 0) return k;
    return -1;
}

static void fail_at(const Tokenizer *t, const BpeGolden *g, int k) {
    char want[64], got[64];
    readable(g->pieces[k], want, sizeof want);
    readable(t->pieces[N_FIXED + k], got, sizeof got);
    const char *hint = k == 0
        ? "the very first merge differs: it is the most frequent pair of neighbouring characters"
        : "the first merges agree, so pairs are counted right, but the words after a merge are not: each word "
          "that holds the merged pair must be re-segmented, merging (as the encoder does) the neighbouring pair "
          "that is the earliest piece, leftmost first on ties, until no neighbouring pair is a piece; only then "
          "do the next counts see the new piece and its neighbours";
    ck_abort_msg("merge %d (id %d): expected \"%s\" (sentencepiece), got \"%s\"; merges 0..%d agree. %s", k,
                 N_FIXED + k, want, got, k - 1, hint);
}

START_TEST(test_bpe_first_merges) {
    BpeGolden g = read_bpe_golden();
    char *text;
    size_t len;
    Tokenizer t = train_on_golden_text(&g, &text, &len);
    int k = first_difference(&t, &g, 40);
    if (k >= 0) fail_at(&t, &g, k);
    printf("the first 40 merges are sentencepiece's\n");
    tokenizer_free(&t);
    free(text);
}
END_TEST

START_TEST(test_bpe_vocabulary) {
    BpeGolden g = read_bpe_golden();
    char *text;
    size_t len;
    Tokenizer t = train_on_golden_text(&g, &text, &len);
    ck_assert_int_eq(t.vocab_size, N_FIXED + g.n_pieces);
    int k = first_difference(&t, &g, g.n_pieces);
    if (k >= 0) fail_at(&t, &g, k);
    printf("all %d learned pieces are sentencepiece's, in order\n", g.n_pieces);
    tokenizer_free(&t);
    free(text);
}
END_TEST

START_TEST(test_bpe_segmentation) {
    BpeGolden g = read_bpe_golden();
    char *text;
    size_t len;
    Tokenizer t = train_on_golden_text(&g, &text, &len);
    const char *line = text;
    for (int i = 0; i < g.n_lines; i++) {
        const char *newline = strchr(line, '\n');
        size_t n = newline ? (size_t)(newline - line) : strlen(line);
        int n_ids;
        int *ids = tokenizer_encode(&t, line, n, 0, 0, &n_ids);
        for (int j = 0; j < n_ids || j < g.n_encoded[i]; j++) {
            if (j < n_ids && j < g.n_encoded[i] && ids[j] == g.encoded[i][j]) continue;
            ck_abort_msg("line %d of bpe-text.txt, token %d: expected id %d, got %d (%d ids, sentencepiece %d): the "
                         "vocabulary learned differs from sentencepiece's, so its texts encode differently (see "
                         "test_bpe_vocabulary for the first piece that differs)", i + 1, j,
                         j < g.n_encoded[i] ? g.encoded[i][j] : -1, j < n_ids ? ids[j] : -1, n_ids, g.n_encoded[i]);
        }
        free(ids);
        line = newline ? newline + 1 : line + n;
    }
    printf("the first %d lines encode to sentencepiece's ids\n", g.n_lines);
    tokenizer_free(&t);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("course kit: tokenizer.c");
    TCase *tc = tcase_create("bpe-train");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bpe_first_merges);
    tcase_add_test(tc, test_bpe_vocabulary);
    tcase_add_test(tc, test_bpe_segmentation);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
