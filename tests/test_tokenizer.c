/* tests/test_tokenizer.c — Check suite "tokenizer" for tokenizer.c.
 *
 * The main test compares lamp's encoder with the SentencePiece library on the
 * goldens made by tests/golden/gen_tokenizer.py (2,500+ lines of stories,
 * Shakespeare, whitespace runs, many scripts, emoji, malformed UTF-8 and
 * random bytes): the ids must be identical, and decoding the ids of every
 * valid-UTF-8 line must give the line back byte for byte. Smaller tests pin
 * the special ids, llama2.c's own test.c prompts, decode's leading-space
 * rule, the terminal printer and the loader's vocabulary-size check. The
 * training tests (tcase "train") check tokenizer_train and `./tokenizer
 * train`: the vocabulary layout, determinism, that encoding the training text
 * reproduces the trainer's own segmentation, round trips, and bad input.
 *
 * Run from the repository root (the paths below are relative to it):
 *   gcc -O2 -g -Wall -Wextra -I. tests/test_tokenizer.c tokenizer.c \
 *       $(pkg-config --cflags --libs check) -o tests/test_tokenizer
 *   ./tests/test_tokenizer */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#include "tokenizer.h"

#define TOKENIZER_BIN "tests/data/llama2/tokenizer.bin"
#define GOLDEN_IN "tests/golden/tokenizer/llama2.in"
#define GOLDEN_IDS "tests/golden/tokenizer/llama2.ids"
#define LLAMA2_VOCAB 32000
#define MAX_REPORTED 5 /* failing golden lines described in full on stderr */

/* ------------------------------------------------------------------------
 * Helpers. */

/* The Llama 2 tokenizer, loaded once per test process (Check forks each
 * test, so every test sees a fresh copy of this static state). */
static Tokenizer *llama2(void) {
    static Tokenizer t;
    static int loaded = 0;
    if (!loaded) {
        tokenizer_load_bin(&t, TOKENIZER_BIN, LLAMA2_VOCAB);
        loaded = 1;
    }
    return &t;
}

static char *slurp_or_fail(const char *path, size_t *size) {
    char *data = slurp(path, size);
    ck_assert_msg(data != NULL, "cannot open %s (run the test from the repository root)", path);
    return data;
}

/* Strict UTF-8 check, written independently of tokenizer.c: no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequences. */
static int is_valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const unsigned min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* Append a C-escaped, quoted rendering of bytes to out (at most max_bytes of
 * input; "..." marks a cut). */
static void escape_bytes(FILE *out, const char *s, size_t n, size_t max_bytes) {
    fputc('"', out);
    for (size_t i = 0; i < n && i < max_bytes; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F) fputc(c, out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else fprintf(out, "\\x%02X", c);
    }
    fputc('"', out);
    if (n > max_bytes) fprintf(out, "... (%zu bytes in all)", n);
}

/* "[a b c]" of ids[from..to), each with its piece text, "..." at the cuts. */
static void print_id_window(FILE *out, const Tokenizer *t, const int *ids, int n, int from, int to) {
    if (from < 0) from = 0;
    if (to > n) to = n;
    fputc('[', out);
    if (from > 0) fprintf(out, "... ");
    for (int i = from; i < to; i++) {
        fprintf(out, "%s%d", i > from ? " " : "", ids[i]);
        if (ids[i] >= 0 && ids[i] < t->vocab_size) {
            fputc('=', out);
            escape_bytes(out, t->pieces[ids[i]], (size_t)t->piece_lengths[ids[i]], 32);
        }
    }
    if (to < n) fprintf(out, " ...");
    fprintf(out, "] (%d ids)", n);
}

/* Parse one line of space-separated ids. Returns the count; *ids is malloc'd. */
static int parse_ids(const char *s, size_t len, int **ids, const char *path, int lineno) {
    int cap = 16, n = 0;
    *ids = malloc((size_t)cap * sizeof(int));
    size_t i = 0;
    while (i < len) {
        if (s[i] == ' ') { i++; continue; }
        ck_assert_msg(s[i] >= '0' && s[i] <= '9', "%s line %d: bad character in ids", path, lineno);
        long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
        if (n == cap) {
            cap *= 2;
            *ids = realloc(*ids, (size_t)cap * sizeof(int));
        }
        (*ids)[n++] = (int)v;
    }
    return n;
}

typedef struct {
    const char *text;
    size_t len;
    int *ids;   /* the reference library's ids */
    int n_ids;
} GoldenLine;

typedef struct {
    const char *in_path, *ids_path;
    char *in_data, *ids_data;
    GoldenLine *lines;
    int n_lines;
} Golden;

/* A pair of golden files: in_path holds the input lines, ids_path on line i
 * the reference ids of input line i. */
static Golden read_golden_files(const char *in_path, const char *ids_path, int min_lines) {
    Golden g = {in_path, ids_path, NULL, NULL, NULL, 0};
    size_t in_size, ids_size;
    g.in_data = slurp_or_fail(in_path, &in_size);
    g.ids_data = slurp_or_fail(ids_path, &ids_size);
    int cap = 1024;
    g.lines = malloc((size_t)cap * sizeof(GoldenLine));
    size_t ip = 0, dp = 0;
    while (ip < in_size) {
        char *nl = memchr(g.in_data + ip, '\n', in_size - ip);
        ck_assert_msg(nl != NULL, "%s: the last line has no newline", in_path);
        ck_assert_msg(dp < ids_size, "%s has fewer lines than %s (%d)", ids_path, in_path, g.n_lines + 1);
        char *dnl = memchr(g.ids_data + dp, '\n', ids_size - dp);
        ck_assert_msg(dnl != NULL, "%s: the last line has no newline", ids_path);
        if (g.n_lines == cap) {
            cap *= 2;
            g.lines = realloc(g.lines, (size_t)cap * sizeof(GoldenLine));
        }
        GoldenLine *l = &g.lines[g.n_lines++];
        l->text = g.in_data + ip;
        l->len = (size_t)(nl - (g.in_data + ip));
        l->n_ids = parse_ids(g.ids_data + dp, (size_t)(dnl - (g.ids_data + dp)), &l->ids, ids_path, g.n_lines);
        ip = (size_t)(nl - g.in_data) + 1;
        dp = (size_t)(dnl - g.ids_data) + 1;
    }
    ck_assert_msg(dp == ids_size, "%s has more lines than %s (%d)", ids_path, in_path, g.n_lines);
    ck_assert_msg(g.n_lines >= min_lines, "%s has only %d lines", in_path, g.n_lines);
    return g;
}

static Golden read_golden(void) {
    return read_golden_files(GOLDEN_IN, GOLDEN_IDS, 2000);
}

static void free_golden(Golden *g) {
    for (int i = 0; i < g->n_lines; i++) free(g->lines[i].ids);
    free(g->lines);
    free(g->in_data);
    free(g->ids_data);
}

/* Encode every golden line with t and compare with the golden ids. Returns
 * the number of lines that differ; describes the first MAX_REPORTED on
 * stderr and puts the first one's line number and position in *first_line
 * and *first_pos. */
static int golden_encode_mismatches(const Tokenizer *t, const Golden *g, int *first_line, int *first_pos) {
    int n_fail = 0;
    for (int i = 0; i < g->n_lines; i++) {
        const GoldenLine *l = &g->lines[i];
        int n;
        int *got = tokenizer_encode(t, l->text, l->len, 0, 0, &n);
        int pos = 0;
        while (pos < n && pos < l->n_ids && got[pos] == l->ids[pos]) pos++;
        if (pos < n || pos < l->n_ids) {
            if (n_fail == 0) { *first_line = i + 1; *first_pos = pos; }
            if (++n_fail <= MAX_REPORTED) {
                fprintf(stderr, "%s line %d: ids differ at position %d\n  input:    ", g->in_path, i + 1, pos);
                escape_bytes(stderr, l->text, l->len, 400);
                fprintf(stderr, "\n  expected: ");
                print_id_window(stderr, t, l->ids, l->n_ids, pos - 6, pos + 6);
                fprintf(stderr, "\n  got:      ");
                print_id_window(stderr, t, got, n, pos - 6, pos + 6);
                if (l->n_ids <= 64 && n <= 64) {
                    fprintf(stderr, "\n  expected ids:");
                    for (int k = 0; k < l->n_ids; k++) fprintf(stderr, " %d", l->ids[k]);
                    fprintf(stderr, "\n  got ids:     ");
                    for (int k = 0; k < n; k++) fprintf(stderr, " %d", got[k]);
                }
                fputc('\n', stderr);
            }
        }
        free(got);
    }
    return n_fail;
}

/* Decode the golden ids of every line that skip() does not exclude and
 * compare with the line. Returns the number that differ (the first
 * MAX_REPORTED described on stderr, the first one's number in *first_line);
 * *n_checked counts the lines compared. */
static int golden_decode_mismatches(const Tokenizer *t, const Golden *g, int (*skip)(const GoldenLine *),
                                    int *n_checked, int *first_line) {
    int n_fail = 0;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *n_checked = 0;
    for (int i = 0; i < g->n_lines; i++) {
        const GoldenLine *l = &g->lines[i];
        if (skip(l)) continue;
        (*n_checked)++;
        size_t n = 0;
        int prev = -1;
        for (int k = 0; k < l->n_ids; k++) {
            size_t len;
            const char *piece = tokenizer_decode(t, prev, l->ids[k], &len);
            while (n + len > cap) buf = realloc(buf, cap *= 2);
            memcpy(buf + n, piece, len);
            n += len;
            prev = l->ids[k];
        }
        if (n == l->len && memcmp(buf, l->text, n) == 0) continue;
        if (n_fail == 0) *first_line = i + 1;
        if (++n_fail <= MAX_REPORTED) {
            size_t at = 0;
            while (at < n && at < l->len && buf[at] == l->text[at]) at++;
            size_t from = at > 20 ? at - 20 : 0;
            fprintf(stderr, "%s line %d: decode(ids) differs from the line at byte %zu\n  line:    ...",
                    g->in_path, i + 1, at);
            escape_bytes(stderr, l->text + from, l->len - from, 60);
            fprintf(stderr, "\n  decoded: ...");
            escape_bytes(stderr, buf + from, n - from, 60);
            fputc('\n', stderr);
        }
    }
    free(buf);
    return n_fail;
}

/* ------------------------------------------------------------------------
 * Goldens: SentencePiece (tests/golden/gen_tokenizer.py). */

START_TEST(test_golden_ids) {
    Golden g = read_golden();
    int first_fail = 0, first_pos = 0;
    int n_fail = golden_encode_mismatches(llama2(), &g, &first_fail, &first_pos);
    int n_lines = g.n_lines;
    free_golden(&g);
    ck_assert_msg(n_fail == 0,
                  "%d of %d golden lines encode differently from SentencePiece; the first is line %d "
                  "of %s (position %d); details of the first %d on stderr",
                  n_fail, n_lines, first_fail, GOLDEN_IN, first_pos, MAX_REPORTED);
}
END_TEST

/* Only valid UTF-8 decodes back to itself. Nor do lines containing U+2581
 * '▁': SentencePiece reads it as a space, so it comes back as one, in the
 * library too. */
static int not_sentencepiece_round_trip(const GoldenLine *l) {
    if (!is_valid_utf8((const unsigned char *)l->text, l->len)) return 1;
    for (size_t k = 0; k + 2 < l->len; k++)
        if (memcmp(l->text + k, "\xE2\x96\x81", 3) == 0) return 1;
    return 0;
}

/* Decoding the SentencePiece ids of a valid-UTF-8 line gives the line back. */
START_TEST(test_golden_decode) {
    Golden g = read_golden();
    int n_checked, first_fail = 0;
    int n_fail = golden_decode_mismatches(llama2(), &g, not_sentencepiece_round_trip, &n_checked, &first_fail);
    int n_lines = g.n_lines;
    free_golden(&g);
    ck_assert_msg(n_checked > 2000, "only %d of %d lines were checked", n_checked, n_lines);
    ck_assert_msg(n_fail == 0,
                  "%d of %d valid-UTF-8 golden lines do not decode back to themselves; the first is "
                  "line %d of %s; details on stderr", n_fail, n_checked, first_fail, GOLDEN_IN);
}
END_TEST

/* ------------------------------------------------------------------------
 * Goldens: byte-level BPE (tests/golden/gen_tokenizer_bytelevel.py). Three
 * small vocabularies trained with Hugging Face `tokenizers`, one per split
 * lamp implements, on the same ~1,000 lines (stories, Shakespeare, digit and
 * whitespace runs, contractions in every case, many scripts, emoji,
 * combining marks, added tokens, malformed UTF-8). */

#define BYTELEVEL_DIR "tests/golden/tokenizer_bytelevel/"
static const char *const bytelevel_kinds[] = {"gpt2", "llama3", "smollm"};
static const int bytelevel_kind_ids[] = {TOKENIZER_GPT2, TOKENIZER_LLAMA3, TOKENIZER_SMOLLM};
#define N_BYTELEVEL 3

static Golden read_bytelevel_golden(int kind, Tokenizer *t) {
    char model[128], ids[128];
    snprintf(model, sizeof model, BYTELEVEL_DIR "%s.lamp", bytelevel_kinds[kind]);
    snprintf(ids, sizeof ids, BYTELEVEL_DIR "%s.ids", bytelevel_kinds[kind]);
    tokenizer_load_file(t, model);
    ck_assert_msg(t->kind == bytelevel_kind_ids[kind], "%s: tokenizer kind %d, expected %d", model, t->kind,
                  bytelevel_kind_ids[kind]);
    return read_golden_files(BYTELEVEL_DIR "lines.in", ids, 900);
}

START_TEST(test_bytelevel_golden_ids) {
    Tokenizer t;
    Golden g = read_bytelevel_golden(_i, &t);
    int first_fail = 0, first_pos = 0;
    int n_fail = golden_encode_mismatches(&t, &g, &first_fail, &first_pos);
    int n_lines = g.n_lines;
    free_golden(&g);
    tokenizer_free(&t);
    ck_assert_msg(n_fail == 0,
                  "%s: %d of %d golden lines encode differently from Hugging Face tokenizers; the first is "
                  "line %d (position %d); details of the first %d on stderr",
                  bytelevel_kinds[_i], n_fail, n_lines, first_fail, first_pos, MAX_REPORTED);
    printf("byte-level %s: %d golden lines encode as Hugging Face tokenizers does\n", bytelevel_kinds[_i],
           n_lines);
}
END_TEST

/* Added tokens (<|im_end|> ...) decode to nothing, as in `tokenizers` with
 * skip_special_tokens; malformed UTF-8 was replaced by U+FFFD before
 * encoding. Every other line decodes back to itself. */
static int not_bytelevel_round_trip(const GoldenLine *l) {
    if (!is_valid_utf8((const unsigned char *)l->text, l->len)) return 1;
    for (size_t k = 0; k + 1 < l->len; k++)
        if (l->text[k] == '<' && l->text[k + 1] == '|') return 1;
    return 0;
}

START_TEST(test_bytelevel_golden_decode) {
    Tokenizer t;
    Golden g = read_bytelevel_golden(_i, &t);
    int n_checked, first_fail = 0;
    int n_fail = golden_decode_mismatches(&t, &g, not_bytelevel_round_trip, &n_checked, &first_fail);
    free_golden(&g);
    tokenizer_free(&t);
    ck_assert_msg(n_checked > 850, "only %d lines were checked", n_checked);
    ck_assert_msg(n_fail == 0, "%s: %d of %d golden lines do not decode back to themselves; the first is line %d",
                  bytelevel_kinds[_i], n_fail, n_checked, first_fail);
}
END_TEST

/* ------------------------------------------------------------------------
 * Encoding: llama2.c's test.c, special ids. */

static void check_encode(const char *text, const int *expected, int n_expected, int add_bos, int add_eos) {
    int n;
    int *got = tokenizer_encode(llama2(), text, strlen(text), add_bos, add_eos, &n);
    int pos = 0;
    while (pos < n && pos < n_expected && got[pos] == expected[pos]) pos++;
    if (pos < n || pos < n_expected) {
        fprintf(stderr, "encode(");
        escape_bytes(stderr, text, strlen(text), 200);
        fprintf(stderr, ", bos=%d, eos=%d) differs at position %d\n  expected:", add_bos, add_eos, pos);
        for (int i = 0; i < n_expected; i++) fprintf(stderr, " %d", expected[i]);
        fprintf(stderr, "\n  got:     ");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", got[i]);
        fputc('\n', stderr);
    }
    free(got);
    ck_assert_msg(pos == n && pos == n_expected,
                  "encode(\"%.40s\") differs at position %d (got %d ids, expected %d); ids on stderr",
                  text, pos, n, n_expected);
}
#define CHECK_ENCODE(text, bos, eos, ...)                                                   \
    do {                                                                                    \
        static const int expected_[] = {__VA_ARGS__};                                       \
        check_encode(text, expected_, (int)(sizeof expected_ / sizeof expected_[0]), bos, eos); \
    } while (0)

START_TEST(test_llama2c_prompts) {
    /* The prompts and ids of karpathy/llama2.c test.c (BOS on, EOS off). */
    CHECK_ENCODE("", 1, 0, 1);
    CHECK_ENCODE("I believe the meaning of life is", 1, 0, 1, 306, 4658, 278, 6593, 310, 2834, 338);
    CHECK_ENCODE("Simply put, the theory of relativity states that ", 1, 0,
                 1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871);
    CHECK_ENCODE("A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n"
                 "        I just ", 1, 0,
                 1, 319, 11473, 2643, 378, 629, 271, 18099, 278, 3815, 373, 278, 6826, 29901, 13, 13,
                 4706, 6324, 14332, 29892, 13, 13, 4706, 306, 925, 29871);
    CHECK_ENCODE("Translate English to French:\n\n        sea otter => loutre de mer\n"
                 "        peppermint => menthe poivr\xC3\xA9" "e\n        plush girafe => girafe peluche\n"
                 "        cheese =>", 1, 0,
                 1, 4103, 9632, 4223, 304, 5176, 29901, 13, 13, 4706, 7205, 4932, 357, 1149, 301, 449,
                 276, 316, 2778, 13, 4706, 1236, 407, 837, 524, 1149, 6042, 354, 772, 440, 29878, 1318,
                 13, 4706, 715, 1878, 330, 3055, 1725, 1149, 330, 3055, 1725, 4639, 28754, 13, 4706, 923,
                 968, 1149);
}
END_TEST

START_TEST(test_bos_eos) {
    CHECK_ENCODE("hello", 0, 0, 22172);
    CHECK_ENCODE("hello", 0, 1, 22172, 2);
    CHECK_ENCODE("hello", 1, 1, 1, 22172, 2);
}
END_TEST

START_TEST(test_empty_and_malformed) {
    int n = -1;
    int *ids = tokenizer_encode(llama2(), "", 0, 0, 0, &n);
    ck_assert_int_eq(n, 0);
    free(ids);
    ids = tokenizer_encode(llama2(), "", 0, 0, 1, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], 2);
    free(ids);
    /* each malformed byte is U+FFFD (piece 30140); two of them merge into 26308 */
    CHECK_ENCODE("\x80", 0, 0, 29871, 30140);
    CHECK_ENCODE("\xE2\x82", 0, 0, 29871, 26308);
    CHECK_ENCODE("a\xC0\xAF" "b", 0, 0, 263, 26308, 29890);
    /* a literal U+FFFD is the same piece */
    CHECK_ENCODE("\xEF\xBF\xBD", 0, 0, 29871, 30140);
    /* a character with no piece falls back to its UTF-8 bytes */
    CHECK_ENCODE("\xF4\x8F\xBF\xBF", 0, 0, 29871, 247, 146, 194, 194);
}
END_TEST

START_TEST(test_special_ids) {
    Tokenizer *t = llama2();
    ck_assert_int_eq(t->vocab_size, LLAMA2_VOCAB);
    ck_assert_int_eq(t->bos_id, 1);
    ck_assert_int_eq(t->eos_id, 2);
    ck_assert_int_eq(t->unk_id, 0);
    ck_assert_int_eq(t->byte_ids['\n'], 13);
    ck_assert_int_eq(t->byte_ids[0x00], 3);
    ck_assert_int_eq(t->byte_ids[0xFF], 258);
    ck_assert_int_eq(t->types[0], PIECE_UNKNOWN);
    ck_assert_int_eq(t->types[1], PIECE_CONTROL);
    ck_assert_int_eq(t->types[2], PIECE_CONTROL);
    ck_assert_int_eq(t->types[13], PIECE_BYTE);
    ck_assert_int_eq(t->types[29871], PIECE_NORMAL);
    ck_assert(t->add_dummy_prefix);
}
END_TEST

/* vocab_size <= 0 reads pieces to the end of the file. */
START_TEST(test_load_to_eof) {
    Tokenizer t;
    tokenizer_load_bin(&t, TOKENIZER_BIN, 0);
    ck_assert_int_eq(t.vocab_size, LLAMA2_VOCAB);
    ck_assert_int_eq(t.bos_id, 1);
    ck_assert_int_eq(t.eos_id, 2);
    tokenizer_free(&t);
    tokenizer_load_file(&t, TOKENIZER_BIN);
    ck_assert_int_eq(t.vocab_size, LLAMA2_VOCAB);
    tokenizer_free(&t);
}
END_TEST

/* ------------------------------------------------------------------------
 * Decoding. */

static void check_decode(int prev, int id, const char *expected, size_t expected_len) {
    size_t len = 12345;
    const char *s = tokenizer_decode(llama2(), prev, id, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(len == expected_len && memcmp(s, expected, len) == 0,
                  "decode(prev=%d, id=%d) gave %zu bytes \"%.*s\", expected %zu bytes \"%s\"",
                  prev, id, len, (int)len, s, expected_len, expected);
}

START_TEST(test_decode) {
    /* byte pieces give their byte, wherever they are */
    check_decode(100, 13, "\n", 1);   /* <0x0A> */
    check_decode(-1, 13, "\n", 1);
    check_decode(1, 13, "\n", 1);
    check_decode(100, 3, "\0", 1);    /* <0x00>: one zero byte */
    check_decode(100, 258, "\xFF", 1);
    /* the leading space goes only on the first piece and right after BOS */
    check_decode(-1, 306, "I", 1);     /* "▁I" */
    check_decode(1, 306, "I", 1);
    check_decode(263, 306, " I", 2);
    check_decode(2, 306, " I", 2);     /* after EOS it stays */
    check_decode(13, 306, " I", 2);    /* after a newline byte it stays */
    check_decode(-1, 29871, "", 0);    /* "▁" alone */
    check_decode(22172, 29871, " ", 1);
    check_decode(-1, 259, " ", 1);     /* "▁▁": only one space is the prefix */
    check_decode(-1, 29890, "b", 1);   /* no space to drop */
    check_decode(263, 29890, "b", 1);
    /* control pieces give nothing */
    check_decode(-1, 1, "", 0);
    check_decode(100, 2, "", 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Utf8Printer. */

typedef struct {
    FILE *f;
    char *buf;
    size_t size;
    Utf8Printer p;
} Capture;

static void capture_open(Capture *c) {
    memset(c, 0, sizeof *c);
    c->f = open_memstream(&c->buf, &c->size);
    ck_assert_ptr_nonnull(c->f);
}
static void capture_print(Capture *c, const char *bytes, size_t len) {
    utf8_print(&c->p, bytes, len, c->f);
    fflush(c->f);
}
static void capture_close(Capture *c) {
    fclose(c->f);
    free(c->buf);
}
#define ASSERT_CAPTURED(c, expected)                                                          \
    do {                                                                                      \
        fflush((c)->f);                                                                       \
        ck_assert_msg((c)->size == sizeof(expected) - 1 &&                                    \
                          memcmp((c)->buf, expected, sizeof(expected) - 1) == 0,              \
                      "printed %zu bytes \"%.*s\", expected %zu bytes \"%s\"", (c)->size,      \
                      (int)(c)->size, (c)->buf, sizeof(expected) - 1, expected);              \
    } while (0)

START_TEST(test_printer_waits_for_whole_character) {
    Capture c;
    capture_open(&c);
    capture_print(&c, "\xE2", 1);       /* "€" = E2 82 AC, one byte at a time */
    ASSERT_CAPTURED(&c, "");
    capture_print(&c, "\x82", 1);
    ASSERT_CAPTURED(&c, "");
    capture_print(&c, "\xAC", 1);
    ASSERT_CAPTURED(&c, "\xE2\x82\xAC");
    capture_print(&c, "\xF0\x9F", 2);   /* "😀" = F0 9F 98 80 in two halves */
    ASSERT_CAPTURED(&c, "\xE2\x82\xAC");
    capture_print(&c, "\x98\x80", 2);
    ASSERT_CAPTURED(&c, "\xE2\x82\xAC\xF0\x9F\x98\x80");
    utf8_flush(&c.p, c.f);
    ASSERT_CAPTURED(&c, "\xE2\x82\xAC\xF0\x9F\x98\x80");
    capture_close(&c);
}
END_TEST

START_TEST(test_printer_replaces_bad_bytes) {
    Capture c;
    capture_open(&c);
    capture_print(&c, "\x80", 1);
    ASSERT_CAPTURED(&c, "\xEF\xBF\xBD");
    capture_close(&c);
    capture_open(&c);
    capture_print(&c, "a\xFF" "b", 3);
    ASSERT_CAPTURED(&c, "a\xEF\xBF\xBD" "b");
    capture_close(&c);
}
END_TEST

START_TEST(test_printer_control_characters) {
    Capture c;
    capture_open(&c);
    capture_print(&c, "a\x1b[31mb", 7);  /* ESC is dropped, the rest is text */
    ASSERT_CAPTURED(&c, "a[31mb");
    capture_close(&c);
    capture_open(&c);
    capture_print(&c, "\n\t", 2);
    ASSERT_CAPTURED(&c, "\n\t");
    capture_print(&c, "\r", 1);
    ASSERT_CAPTURED(&c, "\n\t\r");
    capture_print(&c, "\x07\x08\x7f", 3); /* BEL, BS, DEL */
    ASSERT_CAPTURED(&c, "\n\t\r");
    capture_close(&c);
}
END_TEST

/* Every golden line, fed in chunks of varying size: the output is always
 * valid UTF-8 with no control characters but \n \t \r, and a valid line
 * without control characters comes out unchanged. */
START_TEST(test_printer_golden_chunks) {
    Golden g = read_golden();
    unsigned rng = 12345;
    for (int i = 0; i < g.n_lines; i++) {
        GoldenLine *l = &g.lines[i];
        Capture c;
        capture_open(&c);
        for (size_t at = 0; at < l->len;) {
            rng = rng * 1103515245u + 12345u;
            size_t chunk = 1 + (rng >> 16) % 7;
            if (chunk > l->len - at) chunk = l->len - at;
            utf8_print(&c.p, l->text + at, chunk, c.f);
            at += chunk;
        }
        utf8_flush(&c.p, c.f);
        fflush(c.f);
        ck_assert_msg(is_valid_utf8((const unsigned char *)c.buf, c.size),
                      "line %d of %s printed as invalid UTF-8", i + 1, GOLDEN_IN);
        int has_control = 0;
        for (size_t k = 0; k < c.size; k++) {
            unsigned char b = (unsigned char)c.buf[k];
            ck_assert_msg(b >= 0x20 || b == '\n' || b == '\t' || b == '\r',
                          "line %d of %s printed control byte 0x%02X", i + 1, GOLDEN_IN, b);
            ck_assert_msg(b != 0x7F, "line %d of %s printed DEL", i + 1, GOLDEN_IN);
        }
        for (size_t k = 0; k < l->len; k++) {
            unsigned char b = (unsigned char)l->text[k];
            if ((b < 0x20 && b != '\t' && b != '\r') || b == 0x7F) has_control = 1;
        }
        if (!has_control && is_valid_utf8((const unsigned char *)l->text, l->len))
            ck_assert_msg(c.size == l->len && memcmp(c.buf, l->text, l->len) == 0,
                          "line %d of %s (valid UTF-8) was not printed unchanged", i + 1, GOLDEN_IN);
        capture_close(&c);
    }
    free_golden(&g);
}
END_TEST

/* ------------------------------------------------------------------------
 * Loading: a tokenizer.bin that does not have exactly vocab_size pieces is
 * refused with fatal(), which exits with status 1. */

START_TEST(test_load_too_few_pieces) {
    Tokenizer t;
    tokenizer_load_bin(&t, TOKENIZER_BIN, LLAMA2_VOCAB - 1);
}
END_TEST

START_TEST(test_load_too_many_pieces) {
    Tokenizer t;
    tokenizer_load_bin(&t, TOKENIZER_BIN, LLAMA2_VOCAB + 1);
}
END_TEST

START_TEST(test_load_missing_file) {
    Tokenizer t;
    tokenizer_load_bin(&t, "tests/data/llama2/no-such-tokenizer.bin", LLAMA2_VOCAB);
}
END_TEST

/* ------------------------------------------------------------------------
 * Training: tokenizer_train and `./tokenizer train`.
 *
 * The main training text is the first TRAIN_BYTES of valid.txt (whole lines).
 * How the trainer compares with SentencePiece's is the business of
 * tools/compare_tokenizer_training.py (`make test-python`); here the trainer
 * is checked against its contract and against the encoder. */

#define TRAIN_TEXT "data/tinystories/valid.txt"
#define TRAIN_BYTES 65536
#define TRAIN_VOCAB 700
#define SHAKESPEARE "data/tinyshakespeare/input.txt"
#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})   /* argv for run_program */

/* The whole lines of path within its first max_bytes. */
static char *read_lines(const char *path, size_t max_bytes, size_t *len) {
    char *text = slurp_or_fail(path, len);
    if (*len > max_bytes) {
        *len = max_bytes;
        while (*len > 0 && text[*len - 1] != '\n') (*len)--;
    }
    return text;
}

static void train(Tokenizer *t, const char *text, size_t len, int vocab_size, double coverage,
                  TrainedWords *trained) {
    TrainOptions options = {vocab_size, coverage, 0};
    tokenizer_train(t, text, len, &options, "the test text", trained);
}

/* Call f(line, len, data) for each line of text, without its "\n". */
static void for_each_line(const char *text, size_t len, void (*f)(const char *, size_t, void *),
                          void *data) {
    for (size_t start = 0; start < len;) {
        const char *newline = memchr(text + start, '\n', len - start);
        size_t end = newline ? (size_t)(newline - text) : len;
        f(text + start, end - start, data);
        start = end + 1;
    }
}

static int contains_bytes(const char *s, size_t len, const char *needle, size_t needle_len) {
    for (size_t i = 0; i + needle_len <= len; i++)
        if (memcmp(s + i, needle, needle_len) == 0) return 1;
    return 0;
}

/* Encoding the training text reproduces the trainer's final segmentation:
 * each distinct word, encoded on its own, gives the trainer's ids for it (the
 * word starts with its ▁, so the encoder must not add a dummy prefix), and
 * the lines of the text encode to as many ids as that segmentation has. */
typedef struct {
    const Tokenizer *t;
    int64_t n_ids;
} IdCount;

static void count_ids(const char *line, size_t len, void *data) {
    IdCount *c = data;
    int n;
    free(tokenizer_encode(c->t, line, len, 0, 0, &n));
    c->n_ids += n;
}

static void check_segmentation(Tokenizer *t, const TrainedWords *trained, const char *text, size_t len) {
    int64_t trainer_ids = 0;
    int n_fail = 0;
    t->add_dummy_prefix = 0;
    for (int w = 0; w < trained->n_words; w++) {
        const TrainedWord *word = &trained->words[w];
        ck_assert_msg(word->len > 0 && word->text[0] == ' ', "word %d does not start with its space", w);
        int n;
        int *ids = tokenizer_encode(t, word->text, (size_t)word->len, 0, 0, &n);
        if ((n != word->n_ids || memcmp(ids, word->ids, (size_t)n * sizeof(int)) != 0) &&
            ++n_fail <= MAX_REPORTED) {
            fprintf(stderr, "word ");
            escape_bytes(stderr, word->text, (size_t)word->len, 80);
            fprintf(stderr, "\n  trainer: ");
            print_id_window(stderr, t, word->ids, word->n_ids, 0, 16);
            fprintf(stderr, "\n  encoder: ");
            print_id_window(stderr, t, ids, n, 0, 16);
            fputc('\n', stderr);
        }
        free(ids);
        trainer_ids += word->count * word->n_ids;
    }
    t->add_dummy_prefix = 1;
    ck_assert_msg(n_fail == 0, "%d of %d words encode differently from the trainer's segmentation of "
                  "them (details on stderr)", n_fail, trained->n_words);
    IdCount c = {t, 0};
    for_each_line(text, len, count_ids, &c);
    ck_assert_msg(c.n_ids == trainer_ids, "the text encodes to %lld ids, the trainer's segmentation of it "
                  "has %lld", (long long)c.n_ids, (long long)trainer_ids);
}

/* decode(encode(line)) == line, for every valid-UTF-8 line without '▁'
 * (which SentencePiece reads as a space). */
typedef struct {
    const Tokenizer *t;
    int n_checked, n_fail;
} RoundTrip;

static void round_trip_line(const char *line, size_t len, void *data) {
    RoundTrip *r = data;
    if (!is_valid_utf8((const unsigned char *)line, len) || contains_bytes(line, len, "\xE2\x96\x81", 3))
        return;
    int n;
    int *ids = tokenizer_encode(r->t, line, len, 0, 0, &n);
    char *out = malloc(len + 1);
    size_t out_len = 0;
    for (int i = 0; i < n; i++) {
        size_t piece_len;
        const char *piece = tokenizer_decode(r->t, i ? ids[i - 1] : -1, ids[i], &piece_len);
        if (out_len + piece_len > len) { out_len = len + 1; break; }   /* longer than the line */
        memcpy(out + out_len, piece, piece_len);
        out_len += piece_len;
    }
    r->n_checked++;
    if ((out_len != len || memcmp(out, line, len) != 0) && ++r->n_fail <= MAX_REPORTED) {
        fprintf(stderr, "decode(encode(line)) differs from the line:\n  line:    ");
        escape_bytes(stderr, line, len, 120);
        fprintf(stderr, "\n  decoded: ");
        escape_bytes(stderr, out, out_len > len ? len : out_len, 120);
        fputc('\n', stderr);
    }
    free(out);
    free(ids);
}

static void check_round_trip(const Tokenizer *t, const char *text, size_t len, int min_lines) {
    RoundTrip r = {t, 0, 0};
    for_each_line(text, len, round_trip_line, &r);
    ck_assert_msg(r.n_checked >= min_lines, "only %d lines were checked", r.n_checked);
    ck_assert_msg(r.n_fail == 0, "%d of %d lines do not survive decode(encode(line)); details on stderr",
                  r.n_fail, r.n_checked);
}

static int count_chars(const char *s, int len) {
    int n = 0;
    for (int i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

START_TEST(test_train_layout) {
    size_t len;
    char *text = read_lines(TRAIN_TEXT, TRAIN_BYTES, &len);
    Tokenizer t;
    train(&t, text, len, TRAIN_VOCAB, 0.9995, NULL);
    ck_assert_int_eq(t.vocab_size, TRAIN_VOCAB);
    ck_assert_str_eq(t.pieces[0], "<unk>");
    ck_assert_str_eq(t.pieces[1], "<s>");
    ck_assert_str_eq(t.pieces[2], "</s>");
    ck_assert_int_eq(t.types[0], PIECE_UNKNOWN);
    ck_assert_int_eq(t.types[1], PIECE_CONTROL);
    ck_assert_int_eq(t.types[2], PIECE_CONTROL);
    ck_assert_int_eq(t.unk_id, 0);
    ck_assert_int_eq(t.bos_id, 1);
    ck_assert_int_eq(t.eos_id, 2);
    ck_assert(t.add_dummy_prefix);
    for (int b = 0; b < 256; b++) {
        char expected[8];
        snprintf(expected, sizeof expected, "<0x%02X>", b);
        ck_assert_str_eq(t.pieces[3 + b], expected);
        ck_assert_int_eq(t.types[3 + b], PIECE_BYTE);
        ck_assert_int_eq(t.byte_ids[b], 3 + b);
    }
    /* The learned pieces: the merges, scored 0, -1, -2, ... (an earlier merge
     * scores higher), then the single characters, the space (▁) first, as the
     * most frequent; all normal, all different, all within SentencePiece's
     * rules: at most 16 characters, ▁ only at the start, and (this text is
     * ASCII) no letters together with digits or punctuation. */
    int first_char = -1, longest = 0;
    for (int id = 259; id < t.vocab_size; id++) {
        const char *p = t.pieces[id];
        int n_bytes = t.piece_lengths[id], n_chars = count_chars(p, n_bytes);
        if (n_bytes > longest) longest = n_bytes;
        ck_assert_int_eq(t.types[id], PIECE_NORMAL);
        ck_assert_msg(t.scores[id] == (float)(259 - id), "piece %d has score %g", id, (double)t.scores[id]);
        if (n_chars == 1 && first_char < 0) first_char = id;
        ck_assert_msg(first_char < 0 || n_chars == 1,
                      "piece %d \"%s\" (%d characters) comes after the single characters", id, p, n_chars);
        ck_assert_msg(n_chars <= 16, "piece %d \"%s\" is longer than 16 characters", id, p);
        ck_assert_msg(n_bytes > 0 && !memchr(p + 1, ' ', (size_t)n_bytes - 1),
                      "piece %d \"%s\" has a space after its start", id, p);
        int letters = 0, others = 0;
        for (int i = 0; i < n_bytes; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c == ' ' || c >= 0x80) continue;
            if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') letters++;
            else others++;
        }
        ck_assert_msg(!(letters && others), "piece %d \"%s\" mixes letters with digits or punctuation", id, p);
        for (int other = 259; other < id; other++)
            ck_assert_msg(strcmp(t.pieces[other], p) != 0, "pieces %d and %d are both \"%s\"", other, id, p);
    }
    ck_assert_msg(first_char > 300, "too few merges: the characters start at id %d", first_char);
    ck_assert_str_eq(t.pieces[first_char], " ");
    ck_assert_int_eq(t.max_piece_length, longest);
    tokenizer_free(&t);
    free(text);
}
END_TEST

/* Same text and options, same vocabulary: in memory, and as files written
 * by two runs of `./tokenizer train`, which load back to the vocabulary. */
START_TEST(test_train_deterministic) {
    size_t len;
    char *text = read_lines(TRAIN_TEXT, TRAIN_BYTES, &len);
    Tokenizer a, b;
    train(&a, text, len, TRAIN_VOCAB, 0.9995, NULL);
    train(&b, text, len, TRAIN_VOCAB, 0.9995, NULL);
    for (int id = 0; id < TRAIN_VOCAB; id++) {
        ck_assert_int_eq(a.piece_lengths[id], b.piece_lengths[id]);
        ck_assert(memcmp(a.pieces[id], b.pieces[id], (size_t)a.piece_lengths[id]) == 0);
        ck_assert(memcmp(&a.scores[id], &b.scores[id], sizeof(float)) == 0);
        ck_assert_int_eq(a.types[id], b.types[id]);
    }
    tokenizer_free(&b);

    char text_path[64], out_path[2][64], vocab[16];
    snprintf(text_path, sizeof text_path, TMP_DIR "/train-text.%d", (int)getpid());
    snprintf(vocab, sizeof vocab, "%d", TRAIN_VOCAB);
    write_file(text_path, text, len);
    size_t size[2];
    char *file[2];
    for (int run = 0; run < 2; run++) {
        snprintf(out_path[run], sizeof out_path[run], TMP_DIR "/train-%d.%d.bin", run, (int)getpid());
        Proc p = run_program(NULL, ARGS((char *)program("tokenizer"), "train", "-i", text_path, "-o",
                                        out_path[run], "--vocab-size", vocab));
        ck_assert_msg(p.exited && p.code == 0, "./tokenizer train failed (%d): %s", p.code, p.err);
        free_proc(&p);
        file[run] = slurp_or_fail(out_path[run], &size[run]);
    }
    ck_assert_msg(size[0] == size[1] && memcmp(file[0], file[1], size[0]) == 0,
                  "two runs of ./tokenizer train wrote different files");
    Tokenizer loaded;
    tokenizer_load_bin(&loaded, out_path[0], TRAIN_VOCAB);
    ck_assert_int_eq(loaded.bos_id, 1);
    ck_assert_int_eq(loaded.eos_id, 2);
    ck_assert_str_eq(loaded.pieces[1], "\n<s>\n");     /* llama2.c's way of writing them */
    ck_assert_str_eq(loaded.pieces[2], "\n</s>\n");
    for (int id = 0; id < TRAIN_VOCAB; id++) {
        ck_assert_int_eq(loaded.types[id], a.types[id]);
        ck_assert(memcmp(&loaded.scores[id], &a.scores[id], sizeof(float)) == 0);
        if (id == 1 || id == 2) continue;
        ck_assert_int_eq(loaded.piece_lengths[id], a.piece_lengths[id]);
        ck_assert(memcmp(loaded.pieces[id], a.pieces[id], (size_t)a.piece_lengths[id]) == 0);
    }
    for (int run = 0; run < 2; run++) {
        unlink(out_path[run]);
        free(file[run]);
    }
    unlink(text_path);
    tokenizer_free(&loaded);
    tokenizer_free(&a);
    free(text);
}
END_TEST

START_TEST(test_train_segmentation) {
    size_t len;
    char *text = read_lines(TRAIN_TEXT, TRAIN_BYTES, &len);
    Tokenizer t;
    TrainedWords trained;
    train(&t, text, len, TRAIN_VOCAB, 0.9995, &trained);
    ck_assert_int_gt(trained.n_words, 1000);
    check_segmentation(&t, &trained, text, len);
    trained_words_free(&trained);
    tokenizer_free(&t);
    free(text);
}
END_TEST

/* decode(encode(x)) == x with a trained vocabulary, on the training text and
 * on Shakespeare, which has characters the vocabulary lacks (byte fallback). */
START_TEST(test_train_round_trip) {
    size_t len, other_len;
    char *text = read_lines(TRAIN_TEXT, TRAIN_BYTES, &len);
    char *other = read_lines(SHAKESPEARE, 1 << 17, &other_len);
    Tokenizer t;
    train(&t, text, len, TRAIN_VOCAB, 0.9995, NULL);
    check_round_trip(&t, text, len, 500);
    check_round_trip(&t, other, other_len, 3000);
    tokenizer_free(&t);
    free(other);
    free(text);
}
END_TEST

/* A made-up text that is hard on the bookkeeping: random words over the
 * letters a, b, c, where the same piece can be spelled many ways ("ab"+"c",
 * "a"+"bc") and merges cascade; runs of one letter ("aaaaaa"); digits and
 * punctuation; accents, a combining mark, Japanese, Greek, an emoji with its
 * variation selector, a tab, U+0000 and a malformed byte. Trained down to the
 * last pair that occurs, the encoder still agrees with the trainer. */
START_TEST(test_train_made_up_text) {
    static const char *const parts[] = {
        "a", "b", "c", "ab", "bc", "ca", "aaaa", "abab", "...", "!?", "12", "3.5", "\xC3\xA9",
        "e\xCC\x81", "\xE6\x97\xA5\xE6\x9C\xAC", "\xE3\x81\xAE", "\xCE\xB1\xCE\xB2", "\xF0\x9F\x98\x80\xEF\xB8\x8F",
        "\t", "\xFF",
    };
    const int n_parts = (int)(sizeof parts / sizeof parts[0]);
    size_t cap = 1 << 18, len = 0;
    char *text = malloc(cap);
    unsigned rng = 2024;
    for (int line = 0; line < 1500; line++) {
        rng = rng * 1103515245u + 12345u;
        int n_words = 1 + (int)((rng >> 16) % 8);
        for (int w = 0; w < n_words; w++) {
            if (w > 0 || (rng >> 8) % 5 == 0) text[len++] = ' ';   /* some lines start with a space */
            rng = rng * 1103515245u + 12345u;
            int n = 1 + (int)((rng >> 16) % 6);
            for (int k = 0; k < n; k++) {
                rng = rng * 1103515245u + 12345u;
                int r = (int)((rng >> 16) % 100);
                const char *part = r < 80 ? parts[r % 8] : parts[8 + r % (n_parts - 8)];
                size_t part_len = strlen(part);
                memcpy(text + len, part, part_len);
                len += part_len;
            }
        }
        if (line % 97 == 0) text[len++] = '\0';
        text[len++] = '\n';
        ck_assert(len + 256 < cap);
    }
    /* 3830 pieces is all this text allows (./tokenizer train says so when
     * asked for more): the trainer goes on past the last pair that still
     * occurs, with pairs that occurred earlier, until none is left. */
    Tokenizer t;
    TrainedWords trained;
    train(&t, text, len, 3830, 1.0, &trained);
    check_segmentation(&t, &trained, text, len);
    check_round_trip(&t, text, len, 1000);
    int zero_id = -1;
    for (int id = 259; id < t.vocab_size; id++)
        if (t.piece_lengths[id] > 0 && memchr(t.pieces[id], '\0', (size_t)t.piece_lengths[id])) zero_id = id;
    ck_assert_msg(zero_id < 0, "piece %d contains U+0000", zero_id);
    trained_words_free(&trained);
    tokenizer_free(&t);
    free(text);
}
END_TEST

/* character_coverage: a character too rare to be covered gets no piece and
 * falls back to its bytes; with coverage 1 it gets one. */
START_TEST(test_train_rare_characters) {
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 2000; i++) len += (size_t)sprintf(text + len, "aab ab ba\n");
    len += (size_t)sprintf(text + len, "\xC3\xA9\n");      /* é, once in 20,000 characters */
    Tokenizer t;
    train(&t, text, len, 259 + 3 + 2, 0.9995, NULL);        /* ▁ a b, and 2 merges */
    int n;
    int *ids = tokenizer_encode(&t, "\xC3\xA9", 2, 0, 0, &n);
    ck_assert_int_eq(n, 3);                                  /* ▁, then the two bytes */
    ck_assert_str_eq(t.pieces[ids[0]], " ");
    ck_assert_int_eq(ids[1], 3 + 0xC3);
    ck_assert_int_eq(ids[2], 3 + 0xA9);
    free(ids);
    check_round_trip(&t, text, len, 2001);
    tokenizer_free(&t);

    train(&t, text, len, 259 + 4 + 2, 1.0, NULL);
    ids = tokenizer_encode(&t, "\xC3\xA9", 2, 0, 0, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(t.pieces[ids[1]], "\xC3\xA9");
    ck_assert_int_eq(t.types[ids[1]], PIECE_NORMAL);
    free(ids);
    tokenizer_free(&t);
    free(text);
}
END_TEST

/* The contract for every error of the command line: exit status 1 (not a
 * signal), nothing on stdout, exactly one line on stderr that starts
 * "lamp: " and contains `keyword`. The one error that only training can find
 * (more pieces asked for than the text has pairs) comes after the progress
 * lines ("train: ..."): with after_progress, those may come first. */
static void check_error(char *const argv[], const char *keyword, int after_progress) {
    Proc p = run_program(NULL, argv);
    char cmd[512] = "";
    for (int i = 0; argv[i]; i++) {
        size_t used = strlen(cmd);
        snprintf(cmd + used, sizeof cmd - used, "%.60s ", argv[i]);
    }
    ck_assert_msg(p.exited, "%s: killed by signal %d", cmd, p.signal);
    ck_assert_msg(p.code == 1, "%s: exit status %d, want 1; stderr: %s", cmd, p.code, p.err);
    ck_assert_msg(p.out_len == 0, "%s: printed to stdout: %s", cmd, p.out);
    char *last = p.err;                     /* the last line */
    if (after_progress) {
        for (char *nl; (nl = strchr(last, '\n')) && nl[1] != '\0'; last = nl + 1)
            ck_assert_msg(strncmp(last, "train: ", 7) == 0, "%s: stderr has other lines: %s", cmd, p.err);
    }
    const char *newline = strchr(last, '\n');
    ck_assert_msg(newline && newline[1] == '\0' && p.err_len == strlen(p.err),
                  "%s: stderr is not exactly one line: %s", cmd, p.err);
    ck_assert_msg(strncmp(last, "lamp: ", 6) == 0, "%s: stderr does not start with 'lamp: ': %s", cmd, p.err);
    ck_assert_msg(strstr(last, keyword) != NULL, "%s: message does not mention '%s': %s", cmd, keyword, p.err);
    free_proc(&p);
}
#define expect_error(argv, keyword) check_error(argv, keyword, 0)

START_TEST(test_train_cli) {
    char *tok = (char *)program("tokenizer");
    Proc p = run_program(NULL, ARGS(tok, "-h"));
    ck_assert_msg(p.exited && p.code == 0 && strstr(p.out, "train") && strstr(p.out, "--vocab-size"),
                  "./tokenizer -h does not document train: %s", p.out);
    free_proc(&p);
    p = run_program(NULL, ARGS(tok, "train", "-h"));
    ck_assert_msg(p.exited && p.code == 0 && strstr(p.out, "--character-coverage"), "train -h: %s", p.out);
    free_proc(&p);

    char text_path[64], out_path[64];
    snprintf(text_path, sizeof text_path, TMP_DIR "/train-cli.%d.txt", (int)getpid());
    snprintf(out_path, sizeof out_path, TMP_DIR "/train-cli.%d.bin", (int)getpid());
    const char *text = "the cat sat on the mat\nthe dog sat on the log\n";
    write_file(text_path, text, strlen(text));
    p = run_program(NULL, ARGS(tok, "train", "-i", text_path, "-o", out_path, "--vocab-size", "285",
                               "--character-coverage", "1"));
    ck_assert_msg(p.exited && p.code == 0, "train failed (%d): %s", p.code, p.err);
    ck_assert_msg(p.out_len == 0, "train printed to stdout: %s", p.out);
    ck_assert_msg(strstr(p.err, "merges") && strstr(p.err, "wrote") && strstr(p.err, " s in all\n"),
                  "train should report progress and time on stderr: %s", p.err);
    free_proc(&p);
    /* the tokenizer it wrote works with ./tokenizer encode and decode */
    p = run_program("the cat sat on the log\n", ARGS(tok, "encode", "-z", out_path));
    ck_assert_msg(p.exited && p.code == 0, "encode with the trained tokenizer failed: %s", p.err);
    Proc d = run_program(p.out, ARGS(tok, "decode", "-z", out_path));
    ck_assert_msg(d.exited && d.code == 0 && strcmp(d.out, "the cat sat on the log\n") == 0,
                  "decode(encode(x)) gave \"%s\"", d.out);
    free_proc(&d);
    free_proc(&p);
    unlink(out_path);
    unlink(text_path);
}
END_TEST

START_TEST(test_train_cli_errors) {
    char *tok = (char *)program("tokenizer");
    char text_path[64], empty_path[64], blank_path[64], out_path[64];
    snprintf(text_path, sizeof text_path, TMP_DIR "/train-err.%d.txt", (int)getpid());
    snprintf(empty_path, sizeof empty_path, TMP_DIR "/train-empty.%d.txt", (int)getpid());
    snprintf(blank_path, sizeof blank_path, TMP_DIR "/train-blank.%d.txt", (int)getpid());
    snprintf(out_path, sizeof out_path, TMP_DIR "/train-err.%d.bin", (int)getpid());
    const char *text = "one two three four five six seven eight nine ten\n";
    write_file(text_path, text, strlen(text));
    write_file(empty_path, "", 0);
    write_file(blank_path, "\n\n\n", 3);
    char *in = text_path, *out = out_path;

    expect_error(ARGS(tok, "train"), "-i FILE");
    expect_error(ARGS(tok, "train", "-i", in, "--vocab-size", "300"), "-o FILE");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out), "--vocab-size");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size"), "needs a value");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab", "300"), "unknown option");
    expect_error(ARGS(tok, "train", "-i", "tests/no-such-text.txt", "-o", out, "--vocab-size", "300"),
                 "cannot open");
    expect_error(ARGS(tok, "train", "-i", "tests", "-o", out, "--vocab-size", "300"), "not a regular file");
    expect_error(ARGS(tok, "train", "-i", empty_path, "-o", out, "--vocab-size", "300"), "no text");
    expect_error(ARGS(tok, "train", "-i", blank_path, "-o", out, "--vocab-size", "300"), "no text");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "258"), "from 259");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "-5"), "from 259");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "4096x"), "from 259");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "abc"), "from 259");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "100000000"), "from 259");
    /* the text has 15 different characters: 259 + 15 pieces at least, and
     * only enough pairs for 342 */
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "270"), "too small");
    check_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "2000"), "at most", 1);
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "300", "--character-coverage", "0"),
                 "character-coverage");
    expect_error(ARGS(tok, "train", "-i", in, "-o", out, "--vocab-size", "300", "--character-coverage", "1.5"),
                 "character-coverage");
    ck_assert_msg(access(out, F_OK) != 0, "a failed train left %s behind", out);
    expect_error(ARGS(tok, "train", "-i", in, "-o", TMP_DIR "/no-such-dir/out.bin", "--vocab-size", "280"),
                 "cannot write");
    unlink(text_path);
    unlink(empty_path);
    unlink(blank_path);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");

    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120); /* generous for slow machines and sanitizers */
    tcase_add_test(tc, test_golden_ids);
    tcase_add_test(tc, test_golden_decode);
    tcase_add_loop_test(tc, test_bytelevel_golden_ids, 0, N_BYTELEVEL);
    tcase_add_loop_test(tc, test_bytelevel_golden_decode, 0, N_BYTELEVEL);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, test_llama2c_prompts);
    tcase_add_test(tc, test_bos_eos);
    tcase_add_test(tc, test_empty_and_malformed);
    tcase_add_test(tc, test_special_ids);
    tcase_add_test(tc, test_load_to_eof);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_test(tc, test_decode);
    suite_add_tcase(s, tc);

    tc = tcase_create("printer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_printer_waits_for_whole_character);
    tcase_add_test(tc, test_printer_replaces_bad_bytes);
    tcase_add_test(tc, test_printer_control_characters);
    tcase_add_test(tc, test_printer_golden_chunks);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_exit_test(tc, test_load_too_few_pieces, 1);
    tcase_add_exit_test(tc, test_load_too_many_pieces, 1);
    tcase_add_exit_test(tc, test_load_missing_file, 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_train_layout);
    tcase_add_test(tc, test_train_deterministic);
    tcase_add_test(tc, test_train_segmentation);
    tcase_add_test(tc, test_train_round_trip);
    tcase_add_test(tc, test_train_made_up_text);
    tcase_add_test(tc, test_train_rare_characters);
    tcase_add_test(tc, test_train_cli);
    tcase_add_test(tc, test_train_cli_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(tokenizer_suite());
}
