/* tests/test_tokenizer.c — Check suite "tokenizer" for tokenizer.c.
 *
 * The main test compares lamp's encoder with the SentencePiece library on the
 * goldens made by tests/golden/gen_tokenizer.py (2,500+ lines of stories,
 * Shakespeare, whitespace runs, many scripts, emoji, malformed UTF-8 and
 * random bytes): the ids must be identical, and decoding the ids of every
 * valid-UTF-8 line must give the line back byte for byte. Smaller tests pin
 * the special ids, llama2.c's own test.c prompts, decode's leading-space
 * rule, the terminal printer and the loader's vocabulary-size check.
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

static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run the test from the repository root)", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    ck_assert_msg(!ferror(f), "error reading %s", path);
    fclose(f);
    *size = n;
    return buf;
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
static int parse_ids(const char *s, size_t len, int **ids, int lineno) {
    int cap = 16, n = 0;
    *ids = malloc((size_t)cap * sizeof(int));
    size_t i = 0;
    while (i < len) {
        if (s[i] == ' ') { i++; continue; }
        ck_assert_msg(s[i] >= '0' && s[i] <= '9', "%s line %d: bad character in ids", GOLDEN_IDS, lineno);
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
    int *ids;   /* the SentencePiece ids */
    int n_ids;
} GoldenLine;

typedef struct {
    char *in_data, *ids_data;
    GoldenLine *lines;
    int n_lines;
} Golden;

static Golden read_golden(void) {
    Golden g = {0};
    size_t in_size, ids_size;
    g.in_data = slurp(GOLDEN_IN, &in_size);
    g.ids_data = slurp(GOLDEN_IDS, &ids_size);
    int cap = 1024;
    g.lines = malloc((size_t)cap * sizeof(GoldenLine));
    size_t ip = 0, dp = 0;
    while (ip < in_size) {
        char *nl = memchr(g.in_data + ip, '\n', in_size - ip);
        ck_assert_msg(nl != NULL, "%s: the last line has no newline", GOLDEN_IN);
        ck_assert_msg(dp < ids_size, "%s has fewer lines than %s (%d)", GOLDEN_IDS, GOLDEN_IN, g.n_lines + 1);
        char *dnl = memchr(g.ids_data + dp, '\n', ids_size - dp);
        ck_assert_msg(dnl != NULL, "%s: the last line has no newline", GOLDEN_IDS);
        if (g.n_lines == cap) {
            cap *= 2;
            g.lines = realloc(g.lines, (size_t)cap * sizeof(GoldenLine));
        }
        GoldenLine *l = &g.lines[g.n_lines++];
        l->text = g.in_data + ip;
        l->len = (size_t)(nl - (g.in_data + ip));
        l->n_ids = parse_ids(g.ids_data + dp, (size_t)(dnl - (g.ids_data + dp)), &l->ids, g.n_lines);
        ip = (size_t)(nl - g.in_data) + 1;
        dp = (size_t)(dnl - g.ids_data) + 1;
    }
    ck_assert_msg(dp == ids_size, "%s has more lines than %s (%d)", GOLDEN_IDS, GOLDEN_IN, g.n_lines);
    ck_assert_msg(g.n_lines >= 2000, "%s has only %d lines", GOLDEN_IN, g.n_lines);
    return g;
}

static void free_golden(Golden *g) {
    for (int i = 0; i < g->n_lines; i++) free(g->lines[i].ids);
    free(g->lines);
    free(g->in_data);
    free(g->ids_data);
}

/* ------------------------------------------------------------------------
 * Goldens. */

START_TEST(test_golden_ids) {
    Tokenizer *t = llama2();
    Golden g = read_golden();
    int n_fail = 0, first_fail = 0, first_pos = 0;
    for (int i = 0; i < g.n_lines; i++) {
        GoldenLine *l = &g.lines[i];
        int n;
        int *got = tokenizer_encode(t, l->text, l->len, 0, 0, &n);
        int pos = 0;
        while (pos < n && pos < l->n_ids && got[pos] == l->ids[pos]) pos++;
        if (pos < n || pos < l->n_ids) {
            if (n_fail == 0) { first_fail = i + 1; first_pos = pos; }
            if (++n_fail <= MAX_REPORTED) {
                fprintf(stderr, "%s line %d: ids differ at position %d\n  input:    ", GOLDEN_IN, i + 1, pos);
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
    int n_lines = g.n_lines;
    free_golden(&g);
    ck_assert_msg(n_fail == 0,
                  "%d of %d golden lines encode differently from SentencePiece; the first is line %d "
                  "of %s (position %d); details of the first %d on stderr",
                  n_fail, n_lines, first_fail, GOLDEN_IN, first_pos, MAX_REPORTED);
}
END_TEST

/* Decoding the SentencePiece ids of a valid-UTF-8 line gives the line back.
 * (Not for lines containing U+2581 '▁': SentencePiece reads it as a space, so
 * it comes back as one, in the library too.) */
START_TEST(test_golden_decode) {
    Tokenizer *t = llama2();
    Golden g = read_golden();
    int n_fail = 0, n_checked = 0, first_fail = 0;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    for (int i = 0; i < g.n_lines; i++) {
        GoldenLine *l = &g.lines[i];
        if (!is_valid_utf8((const unsigned char *)l->text, l->len)) continue;
        int has_space_symbol = 0;
        for (size_t k = 0; k + 2 < l->len; k++)
            if (memcmp(l->text + k, "\xE2\x96\x81", 3) == 0) has_space_symbol = 1;
        if (has_space_symbol) continue;
        n_checked++;
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
        if (n_fail == 0) first_fail = i + 1;
        if (++n_fail <= MAX_REPORTED) {
            size_t at = 0;
            while (at < n && at < l->len && buf[at] == l->text[at]) at++;
            size_t from = at > 20 ? at - 20 : 0;
            fprintf(stderr, "%s line %d: decode(ids) differs from the line at byte %zu\n  line:    ...",
                    GOLDEN_IN, i + 1, at);
            escape_bytes(stderr, l->text + from, l->len - from, 60);
            fprintf(stderr, "\n  decoded: ...");
            escape_bytes(stderr, buf + from, n - from, 60);
            fputc('\n', stderr);
        }
    }
    free(buf);
    int n_lines = g.n_lines;
    free_golden(&g);
    ck_assert_msg(n_checked > 2000, "only %d of %d lines were checked", n_checked, n_lines);
    ck_assert_msg(n_fail == 0,
                  "%d of %d valid-UTF-8 golden lines do not decode back to themselves; the first is "
                  "line %d of %s; details on stderr", n_fail, n_checked, first_fail, GOLDEN_IN);
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

/* ------------------------------------------------------------------------ */

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");

    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120); /* generous for slow machines and sanitizers */
    tcase_add_test(tc, test_golden_ids);
    tcase_add_test(tc, test_golden_decode);
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
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tokenizer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
