/* fuzz/fuzz_tokenizer.c — libFuzzer target: the tokenizer loaders, encode
 * and decode (make fuzz; docs/fuzzing.md).
 *
 * Byte 0 of an input picks what to fuzz (byte 0 % 4):
 *   0  a llama2.c tokenizer.bin     1  a lamp tokenizer section
 *   2  either, by tokenizer_load_file (it looks at the first bytes)
 *      For these, bytes 1-2 are the vocabulary's length n (uint16,
 *      little-endian), n bytes of vocabulary follow, and the rest is text.
 *   3  a real vocabulary (byte 1 % 3: Llama 2's 32,000 pieces, the shipped
 *      model's 4,096, the 512 of tests/data/llama2c/idtok512.bin); the rest
 *      of the input is text.
 * The text is encoded; every id must be in the vocabulary, and every id
 * decodes. With a real vocabulary, which has a piece for every byte, text
 * that is valid UTF-8 without '▁' must come back unchanged:
 * decode(encode(text)) == text, the property tests/test_tokenizer.c checks
 * on whole files. */
#include <string.h>

#include "tokenizer.h"
#include "util.h"

#define N_REAL 3
static Tokenizer real[N_REAL];
static int has_every_byte[N_REAL];
static const char *real_paths[N_REAL] = {"tests/data/llama2/tokenizer.bin", "models/stories.lamp",
                                         "tests/data/llama2c/idtok512.bin"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; i < N_REAL; i++) {
        tokenizer_load_file(&real[i], real_paths[i]);   /* run from the repository root */
        has_every_byte[i] = 1;
        for (int b = 0; b < 256; b++) has_every_byte[i] &= real[i].byte_ids[b] >= 0;
    }
    return 0;
}

/* the length of the valid UTF-8 character at s (n bytes left), 0 if none */
static int utf8_char(const unsigned char *s, size_t n) {
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || (size_t)len > n) return 0;
    uint32_t cp = len == 1 ? s[0] : len == 2 ? s[0] & 0x1Fu : len == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static int round_trips(const unsigned char *text, size_t len) {
    for (size_t i = 0; i < len;) {
        int n = utf8_char(text + i, len - i);
        if (n == 0 || (n == 3 && memcmp(text + i, "\xE2\x96\x81", 3) == 0)) return 0;
        i += (size_t)n;
    }
    return 1;
}

static void encode_and_decode(const Tokenizer *t, const uint8_t *text, size_t len, int check_round_trip) {
    int n;
    int *ids = tokenizer_encode(t, (const char *)text, len, check_round_trip ? 0 : 1, !check_round_trip, &n);
    char *out = xmalloc(len + 1);
    size_t out_len = 0;
    int too_long = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size) abort();   /* an id outside the vocabulary */
        size_t piece_len;
        const char *piece = tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &piece_len);
        if (!piece) abort();
        if (out_len + piece_len > len) too_long = 1;
        else memcpy(out + out_len, piece, piece_len);
        out_len += piece_len;
    }
    if (check_round_trip && round_trips(text, len) && (too_long || out_len != len || memcmp(out, text, len) != 0)) {
        fprintf(stderr, "fuzz: decode(encode(text)) differs from the text (%zu bytes in, %zu out)\n", len, out_len);
        abort();
    }
    free(out);
    free(ids);
}

static void load_and_encode(const uint8_t *data, size_t size) {
    if (size < 2) return;
    int mode = data[0] % 4;
    if (mode == 3) {
        int which = data[1] % N_REAL;
        encode_and_decode(&real[which], data + 2, size - 2, has_every_byte[which]);
        return;
    }
    if (size < 3) return;
    size_t vocab_len = (size_t)data[1] | (size_t)data[2] << 8;
    if (vocab_len > size - 3) return;
    const uint8_t *vocab = data + 3, *text = vocab + vocab_len;
    size_t text_len = size - 3 - vocab_len;
    Tokenizer t;
    if (mode == 0) tokenizer_load_bin(&t, fuzz_scratch_file(0, vocab, vocab_len), 0);
    else if (mode == 1) tokenizer_load_lamp_section(&t, vocab, vocab_len, "fuzz input");
    else tokenizer_load_file(&t, fuzz_scratch_file(0, vocab, vocab_len));
    encode_and_decode(&t, text, text_len, 0);
    tokenizer_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_run(load_and_encode, data, size, NULL);
    return 0;
}
