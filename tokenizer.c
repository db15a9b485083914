/* tokenizer.c — a byte-pair-encoding (BPE) tokenizer that gives exactly the
 * ids of Google's SentencePiece library, in one small file of C.
 *
 * A language model does not read characters; it reads token ids, each id
 * standing for a piece of text ("▁the", "ing", "<0x0A>"). This file does the
 * two conversions:
 *
 *   encode: text -> ids     (split into characters, then merge neighbours)
 *   decode: ids  -> text    (look the pieces up and glue them together)
 *
 * SentencePiece BPE, as used by Llama 2, encodes like this:
 *   1. Normalise: put a space in front of the text (the "dummy prefix", so
 *      "Hello" at the start of a text and " Hello" inside one become the same
 *      token), and treat every malformed UTF-8 byte as U+FFFD.
 *   2. Split the text into Unicode characters: one symbol per character.
 *   3. Repeatedly merge the pair of neighbouring symbols whose concatenation
 *      is the vocabulary piece with the highest score; on a tie the leftmost
 *      pair wins. Stop when no neighbouring pair forms a piece.
 *   4. Emit the id of every symbol. A symbol that is not a piece (a rare
 *      character) falls back to one <0xAB> byte token per UTF-8 byte.
 *
 * llama2.c rescans every pair after every merge, which is O(n^2) in the text
 * length. Here the candidate merges wait in a priority queue (a binary heap),
 * so each merge costs O(log n) and a whole text O(n log n). This is the same
 * algorithm as SentencePiece's bpe_model.cc, which is why the ids agree.
 *
 * After decoding comes training: tokenizer_train learns such a vocabulary
 * from text, the way SentencePiece's BPE trainer does (and, on the texts we
 * tried, with exactly its result).
 *
 * At the bottom, behind TOKENIZER_MAIN, is the `./tokenizer` command-line
 * tool: `./tokenizer encode -z FILE`, `./tokenizer decode -z FILE` and
 * `./tokenizer train -i TEXT -o FILE --vocab-size N`. */
#define _POSIX_C_SOURCE 200809L
#include "tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

/* ------------------------------------------------------------------------
 * A hash table from piece text to id, for the pieces that merges may form.
 * FNV-1a is a simple, decent string hash; the table has at least twice as
 * many slots as the vocabulary has pieces, so a slot holds about one.
 *
 * But a vocabulary file comes from outside, and anyone can make thousands of
 * pieces whose hashes fall into one slot (tools/colliding_vocab.c does).
 * With linear probing each of them would walk past all the earlier ones:
 * 65,536 such pieces took 5.9 s to load, a 13 MB file half an hour. So the
 * pieces of a slot are kept sorted by text (length first, then bytes) and
 * found by binary search: a lookup costs one hash and, in the worst case,
 * log2(vocabulary) comparisons; building the table is one sort. */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;           /* FNV offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;                      /* FNV prime */
    }
    return h;
}

/* The order of pieces within a slot: shorter first, then by bytes. */
static int compare_text(const char *a, size_t a_len, const char *b, size_t b_len) {
    if (a_len != b_len) return a_len < b_len ? -1 : 1;
    return memcmp(a, b, a_len);
}

/* Id of the mergeable piece whose text is s[0..len), or -1. */
static int lookup_piece(const Tokenizer *t, const char *s, size_t len) {
    size_t slot = hash_bytes(s, len) & (t->table_size - 1);
    int lo = t->bucket_start[slot], hi = t->bucket_start[slot + 1];   /* search bucket_ids[lo, hi) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, id = t->bucket_ids[mid];
        int order = compare_text(s, len, t->pieces[id], (size_t)t->piece_lengths[id]);
        if (order == 0) return id;
        if (order < 0) hi = mid;
        else lo = mid + 1;
    }
    return -1;
}

/* One mergeable piece while the table is built: sorted by slot, then text,
 * then id, the pieces of a slot end up together and in search order. */
typedef struct {
    size_t slot;
    const char *text;
    int len, id;
} TableEntry;

static int compare_entries(const void *pa, const void *pb) {
    const TableEntry *a = pa, *b = pb;
    if (a->slot != b->slot) return a->slot < b->slot ? -1 : 1;
    int order = compare_text(a->text, (size_t)a->len, b->text, (size_t)b->len);
    if (order != 0) return order;
    return (a->id > b->id) - (a->id < b->id);
}

static int is_mergeable(int type) {
    return type == PIECE_NORMAL || type == PIECE_USER_DEFINED;
}

/* ------------------------------------------------------------------------
 * Loading. Both file formats are parsed from memory with a bounds-checked
 * cursor, so a truncated or corrupt file gives a message, never a crash. */

typedef struct {
    const unsigned char *data;
    size_t size, pos;
    const char *path;       /* for error messages */
} Reader;

static void read_bytes(Reader *r, void *out, size_t n, const char *what) {
    if (n > r->size - r->pos)
        fatal("%s: file ends early while reading %s (truncated or not a tokenizer)", r->path, what);
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void *read_whole_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s", path);
    struct stat info;   /* a directory opens, but its "size" is nonsense */
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) fatal("%s is not a regular file", path);
    if (fseek(f, 0, SEEK_END) != 0) fatal("cannot seek in %s", path);
    long end = ftell(f);
    if (end < 0) fatal("cannot tell the size of %s", path);
    rewind(f);
    void *buf = xmalloc((size_t)end);
    if (fread(buf, 1, (size_t)end, f) != (size_t)end) fatal("cannot read %s", path);
    fclose(f);
    *size = (size_t)end;
    return buf;
}

/* Allocate room for n pieces. */
static void alloc_pieces(Tokenizer *t, int n) {
    t->vocab_size = n;
    t->pieces = xcalloc((size_t)n, sizeof(char *));
    t->piece_lengths = xcalloc((size_t)n, sizeof(int));
    t->scores = xcalloc((size_t)n, sizeof(float));
    t->types = xcalloc((size_t)n, 1);
}

/* Read one piece's text (len bytes) into t->pieces[id]. */
static void read_piece_text(Tokenizer *t, Reader *r, int id, uint32_t len) {
    if (len > (uint32_t)t->max_piece_length)
        fatal("%s: piece %d is %u bytes, longer than the declared maximum %d",
              r->path, id, len, t->max_piece_length);
    t->pieces[id] = xmalloc((size_t)len + 1);
    read_bytes(r, t->pieces[id], len, "a piece");
    t->pieces[id][len] = '\0';
    t->piece_lengths[id] = (int)len;
}

/* "<0xAB>" -> 0xAB, or -1 if the text is not a byte piece. */
static int parse_byte_piece(const char *s, int len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* After the pieces are read: find the special ids, the byte pieces, and
 * build the hash table of mergeable pieces. */
static void finish_loading(Tokenizer *t, const char *path) {
    t->unk_id = t->bos_id = t->eos_id = -1;
    for (int b = 0; b < 256; b++) {
        t->byte_ids[b] = -1;
        t->byte_text[b][0] = (unsigned char)b;
        t->byte_text[b][1] = 0;
    }
    size_t size = 16;
    while (size < 2 * (size_t)t->vocab_size) size *= 2;
    t->table_size = size;
    TableEntry *entries = xmalloc((size_t)t->vocab_size * sizeof(TableEntry));
    int n_entries = 0;

    for (int id = 0; id < t->vocab_size; id++) {
        if (!isfinite(t->scores[id])) fatal("%s: piece %d has a score that is not a number", path, id);
        int type = t->types[id];
        if (type < PIECE_NORMAL || type > PIECE_BYTE)
            fatal("%s: piece %d has unknown type %d", path, id, type);
        if (type == PIECE_UNKNOWN && t->unk_id < 0) t->unk_id = id;
        if (type == PIECE_BYTE) {
            int b = parse_byte_piece(t->pieces[id], t->piece_lengths[id]);
            if (b < 0) fatal("%s: byte piece %d is not of the form <0xAB>", path, id);
            t->byte_ids[b] = id;
        }
        if (!is_mergeable(type)) continue;
        size_t slot = hash_bytes(t->pieces[id], (size_t)t->piece_lengths[id]) & (size - 1);
        entries[n_entries++] = (TableEntry){slot, t->pieces[id], t->piece_lengths[id], id};
    }
    qsort(entries, (size_t)n_entries, sizeof(TableEntry), compare_entries);

    /* Count each slot's pieces into bucket_start[slot + 1], then add up:
     * bucket_start[s] becomes the number of pieces in slots before s. */
    t->bucket_start = xcalloc(size + 1, sizeof(int));
    t->bucket_ids = xmalloc((size_t)(n_entries ? n_entries : 1) * sizeof(int));
    int n_ids = 0;
    for (int i = 0; i < n_entries; i++) {
        const TableEntry *e = &entries[i], *before = i > 0 ? &entries[i - 1] : NULL;
        if (before && before->slot == e->slot &&
            compare_text(before->text, (size_t)before->len, e->text, (size_t)e->len) == 0)
            continue;   /* a duplicate piece: the first id wins, as in SentencePiece */
        t->bucket_ids[n_ids++] = e->id;
        t->bucket_start[e->slot + 1]++;
    }
    for (size_t slot = 0; slot < size; slot++) t->bucket_start[slot + 1] += t->bucket_start[slot];
    free(entries);
}

/* Byte-level BPE: the merge table. A pair of ids (left, right) is one 64-bit
 * key; its slot holds the rank of the merge, found by linear probing. */
static size_t pair_slot(int left, int right, size_t mask) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    key *= 0x9E3779B97F4A7C15ULL;           /* Fibonacci hashing spreads the bits */
    return (size_t)(key >> 32) & mask;
}

/* Rank of the merge (left, right), or -1 if the merge list has no such pair. */
static int merge_rank(const Tokenizer *t, int left, int right) {
    size_t mask = t->merge_table_size - 1;
    for (size_t slot = pair_slot(left, right, mask);; slot = (slot + 1) & mask) {
        int rank = t->merge_table[slot];
        if (rank < 0) return -1;
        if (t->merge_left[rank] == left && t->merge_right[rank] == right) return rank;
    }
}

/* After a byte-level vocabulary is read: the piece of each single byte, the
 * result of each merge, the merge table and the added tokens. */
static void finish_byte_level(Tokenizer *t, const char *path) {
    /* A byte without a piece (SmolLM2 has none for some control bytes) is
     * dropped from the text, as Hugging Face's BPE does without an unknown token. */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_ids[b] = lookup_piece(t, &c, 1);
    }
    size_t size = 16;
    while (size < 2 * (size_t)t->n_merges) size *= 2;
    t->merge_table_size = size;
    t->merge_table = xmalloc(size * sizeof(int));
    for (size_t i = 0; i < size; i++) t->merge_table[i] = -1;
    char *joined = xmalloc(2 * (size_t)t->max_piece_length + 1);
    for (int m = 0; m < t->n_merges; m++) {
        int a = t->merge_left[m], b = t->merge_right[m];
        size_t la = (size_t)t->piece_lengths[a], lb = (size_t)t->piece_lengths[b];
        memcpy(joined, t->pieces[a], la);
        memcpy(joined + la, t->pieces[b], lb);
        t->merge_result[m] = lookup_piece(t, joined, la + lb);
        if (t->merge_result[m] < 0)
            fatal("%s: merge %d (pieces %d and %d) makes a piece that is not in the vocabulary", path, m, a, b);
        size_t slot = pair_slot(a, b, size - 1);
        while (t->merge_table[slot] >= 0 && !(t->merge_left[t->merge_table[slot]] == a &&
                                               t->merge_right[t->merge_table[slot]] == b))
            slot = (slot + 1) & (size - 1);
        if (t->merge_table[slot] < 0) t->merge_table[slot] = m;  /* a repeated pair keeps its first rank */
    }
    free(joined);
    /* Added tokens, longest first, so the first that matches is the longest. */
    t->added_ids = xmalloc((size_t)t->vocab_size * sizeof(int));
    for (int id = 0; id < t->vocab_size; id++) {
        if ((t->types[id] != PIECE_CONTROL && t->types[id] != PIECE_USER_DEFINED) || t->piece_lengths[id] == 0)
            continue;
        int i = t->n_added++;
        while (i > 0 && t->piece_lengths[t->added_ids[i - 1]] < t->piece_lengths[id]) {
            t->added_ids[i] = t->added_ids[i - 1];
            i--;
        }
        t->added_ids[i] = id;
        t->starts_added[(unsigned char)t->pieces[id][0]] = 1;
    }
}

void tokenizer_load_bin(Tokenizer *t, const char *path, int vocab_size) {
    memset(t, 0, sizeof *t);
    size_t size;
    unsigned char *data = read_whole_file(path, &size);
    Reader r = {data, size, 0, path};
    uint32_t max_len;
    read_bytes(&r, &max_len, 4, "the header");
    if (max_len == 0 || max_len > 65536)
        fatal("%s: max_token_length %u is not sane: not a llama2.c tokenizer.bin?", path, max_len);
    t->max_piece_length = (int)max_len;

    /* The file does not say how many pieces it has. With a model we know the
     * answer (vocab_size); without one, count them: each is score, length, text. */
    int n = vocab_size;
    if (n <= 0) {
        n = 0;
        for (size_t pos = 4; pos < size; n++) {
            uint32_t len;
            if (size - pos < 8) fatal("%s: file ends in the middle of a piece", path);
            memcpy(&len, data + pos + 4, 4);
            if (len > size - pos - 8) fatal("%s: file ends in the middle of a piece", path);
            pos += 8 + (size_t)len;
        }
        if (n == 0) fatal("%s: tokenizer has no pieces", path);
    }
    alloc_pieces(t, n);
    t->add_dummy_prefix = 1;   /* llama2.c's encoder always adds it */
    for (int id = 0; id < n; id++) {
        uint32_t len;
        if (r.pos == size)
            fatal("%s: tokenizer has %d pieces but the model's vocab_size is %d "
                  "(this tokenizer does not belong to this model)", path, id, n);
        read_bytes(&r, &t->scores[id], 4, "a score");
        read_bytes(&r, &len, 4, "a piece length");
        read_piece_text(t, &r, id, len);
        /* tokenizer.bin does not store types: recover them from the text. */
        const char *s = t->pieces[id];
        if (strcmp(s, "<unk>") == 0) t->types[id] = PIECE_UNKNOWN;
        else if (strcmp(s, "\n<s>\n") == 0 || strcmp(s, "\n</s>\n") == 0) t->types[id] = PIECE_CONTROL;
        else if (parse_byte_piece(s, (int)len) >= 0) t->types[id] = PIECE_BYTE;
        else t->types[id] = PIECE_NORMAL;
    }
    if (r.pos != size)
        fatal("%s: tokenizer has more pieces than the model's vocab_size %d "
              "(this tokenizer does not belong to this model)", path, n);
    free(data);
    finish_loading(t, path);
    /* llama2.c hard-codes BOS = 1 and EOS = 2; its export writes them as
     * "\n<s>\n" and "\n</s>\n", which is how we find them when present. */
    for (int id = 0; id < n; id++) {
        if (strcmp(t->pieces[id], "\n<s>\n") == 0 && t->bos_id < 0) t->bos_id = id;
        if (strcmp(t->pieces[id], "\n</s>\n") == 0 && t->eos_id < 0) t->eos_id = id;
    }
    if (t->bos_id < 0 && n > 1) t->bos_id = 1;
    if (t->eos_id < 0 && n > 2) t->eos_id = 2;
}

void tokenizer_load_lamp_section(Tokenizer *t, const unsigned char *data, size_t size,
                                 const char *path) {
    memset(t, 0, sizeof *t);
    Reader r = {data, size, 0, path};
    int32_t n, max_len;
    uint32_t flags;
    read_bytes(&r, &n, 4, "the tokenizer header");
    read_bytes(&r, &max_len, 4, "the tokenizer header");
    read_bytes(&r, &flags, 4, "the tokenizer header");
    if (n <= 0 || n > (1 << 24)) fatal("%s: tokenizer piece count %d is not sane", path, n);
    if (max_len <= 0 || max_len > 65536) fatal("%s: tokenizer max_piece_length %d is not sane", path, max_len);
    /* tokenizer_flags: bit 0 the dummy prefix, bits 8..15 the kind. */
    uint32_t kind = (flags >> 8) & 0xFFu;
    if (kind >= N_TOKENIZER_KINDS)
        fatal("%s: unknown tokenizer kind %u (this build knows 0 SentencePiece, 1 GPT-2, "
              "2 Llama 3, 3 SmolLM)", path, kind);
    if (flags & ~0xFF01u) fatal("%s: unknown tokenizer flags 0x%x", path, flags);
    t->kind = (int)kind;
    t->max_piece_length = max_len;
    t->add_dummy_prefix = (int)(flags & 1u);
    alloc_pieces(t, n);
    for (int id = 0; id < n; id++) {
        uint32_t len;
        read_bytes(&r, &t->scores[id], 4, "a score");
        read_bytes(&r, &t->types[id], 1, "a piece type");
        read_bytes(&r, &len, 4, "a piece length");
        read_piece_text(t, &r, id, len);
    }
    if (t->kind != TOKENIZER_SENTENCEPIECE) {
        /* Byte-level BPE: the merge list follows the pieces, in rank order. */
        int32_t n_merges;
        read_bytes(&r, &n_merges, 4, "the merge count");
        if (n_merges < 0 || n_merges > (1 << 24)) fatal("%s: merge count %d is not sane", path, n_merges);
        t->n_merges = n_merges;
        t->merge_left = xmalloc(((size_t)n_merges + 1) * sizeof(int));
        t->merge_right = xmalloc(((size_t)n_merges + 1) * sizeof(int));
        t->merge_result = xmalloc(((size_t)n_merges + 1) * sizeof(int));
        for (int m = 0; m < n_merges; m++) {
            read_bytes(&r, &t->merge_left[m], 4, "a merge");
            read_bytes(&r, &t->merge_right[m], 4, "a merge");
            if (t->merge_left[m] < 0 || t->merge_left[m] >= n || t->merge_right[m] < 0 || t->merge_right[m] >= n)
                fatal("%s: merge %d names a piece outside the vocabulary", path, m);
        }
    }
    if (r.pos != size) fatal("%s: %zu unexpected bytes after the tokenizer's pieces", path, size - r.pos);
    finish_loading(t, path);
    if (t->kind != TOKENIZER_SENTENCEPIECE) {
        finish_byte_level(t, path);
        return;   /* bos/eos come from the model header */
    }
    /* bos/eos come from the model header; run.c sets them. Control pieces
     * named <s> and </s> are the sensible default for a bare tokenizer. */
    for (int id = 0; id < n; id++) {
        if (t->types[id] != PIECE_CONTROL) continue;
        if (strcmp(t->pieces[id], "<s>") == 0 && t->bos_id < 0) t->bos_id = id;
        if (strcmp(t->pieces[id], "</s>") == 0 && t->eos_id < 0) t->eos_id = id;
    }
}

void tokenizer_load_file(Tokenizer *t, const char *path) {
    /* A lamp model file starts with "LAMP" and keeps its tokenizer at byte
     * 256, after the header; its size is the uint64 at byte 72. */
    FILE *f = fopen(path, "rb");
    if (!f) fatal("cannot open %s", path);
    unsigned char header[256];
    size_t got = fread(header, 1, sizeof header, f);
    fclose(f);
    if (got >= 4 && memcmp(header, "LAMP", 4) == 0) {
        if (got < sizeof header) fatal("%s: file ends inside the lamp header", path);
        uint64_t tok_size;
        memcpy(&tok_size, header + 72, 8);
        size_t size;
        unsigned char *data = read_whole_file(path, &size);
        if (tok_size > size - 256) fatal("%s: tokenizer section runs past the end of the file", path);
        tokenizer_load_lamp_section(t, data + 256, (size_t)tok_size, path);
        free(data);
    } else {
        tokenizer_load_bin(t, path, 0);
    }
}

size_t tokenizer_write_lamp_section(const Tokenizer *t, FILE *out) {
    int32_t header[2] = {t->vocab_size, t->max_piece_length};
    uint32_t flags = (t->add_dummy_prefix ? 1u : 0u) | (uint32_t)t->kind << 8;
    size_t written = 0;
    written += fwrite(header, 4, 2, out) * 4;
    written += fwrite(&flags, 4, 1, out) * 4;
    size_t expected = 12;
    for (int id = 0; id < t->vocab_size; id++) {
        uint32_t len = (uint32_t)t->piece_lengths[id];
        written += fwrite(&t->scores[id], 4, 1, out) * 4;
        written += fwrite(&t->types[id], 1, 1, out);
        written += fwrite(&len, 4, 1, out) * 4;
        written += fwrite(t->pieces[id], 1, len, out);
        expected += 9 + len;
    }
    if (t->kind != TOKENIZER_SENTENCEPIECE) {
        int32_t n_merges = t->n_merges;
        written += fwrite(&n_merges, 4, 1, out) * 4;
        for (int m = 0; m < t->n_merges; m++) {
            written += fwrite(&t->merge_left[m], 4, 1, out) * 4;
            written += fwrite(&t->merge_right[m], 4, 1, out) * 4;
        }
        expected += 4 + 8 * (size_t)t->n_merges;
    }
    if (written != expected) fatal("cannot write the tokenizer (disk full?)");
    return written;
}

void tokenizer_free(Tokenizer *t) {
    for (int i = 0; i < t->vocab_size; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->piece_lengths);
    free(t->scores);
    free(t->types);
    free(t->merge_left);
    free(t->merge_right);
    free(t->merge_result);
    free(t->merge_table);
    free(t->added_ids);
    free(t->bucket_start);
    free(t->bucket_ids);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------
 * UTF-8. A code point takes 1 to 4 bytes:
 *   0xxxxxxx                              U+0000  .. U+007F
 *   110xxxxx 10xxxxxx                     U+0080  .. U+07FF
 *   1110xxxx 10xxxxxx 10xxxxxx            U+0800  .. U+FFFF (not D800..DFFF)
 *   11110xxx 10xxxxxx 10xxxxxx 10xxxxxx   U+10000 .. U+10FFFF
 * utf8_length returns the length of the valid character at s (at most n
 * bytes available), or 0 if the bytes there are not one. Overlong forms,
 * surrogates and values past U+10FFFF are invalid, as in SentencePiece. */
/* The length of the character that start byte c begins (0 if c cannot
 * begin one), and the range [*lo, *hi] its second byte must lie in. */
static int utf8_start(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;          /* overlong */
        if (c == 0xED) *hi = 0x9F;          /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;          /* overlong */
        if (c == 0xF4) *hi = 0x8F;          /* past U+10FFFF */
        return 4;
    }
    return 0;                               /* 80..C1, F5..FF never start one */
}

static int utf8_length(const unsigned char *s, size_t n) {
    unsigned char lo, hi;                   /* allowed range of the 2nd byte */
    int len = utf8_start(s[0], &lo, &hi);
    if (len <= 1) return len;
    if ((size_t)len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* The code point of the valid UTF-8 character s[0..len). The first byte
 * keeps 7, 5, 4 or 3 bits (0x7F >> len covers the three multi-byte cases);
 * each continuation byte adds 6. */
static uint32_t code_point(const unsigned char *s, int len) {
    if (len == 1) return s[0];
    uint32_t cp = s[0] & (0x7Fu >> len);
    for (int i = 1; i < len; i++) cp = (cp << 6) | (s[i] & 0x3Fu);
    return cp;
}

/* Normalise one character as SentencePiece does before it encodes (and
 * before it trains): copy the character at raw (n bytes available) to out and
 * return its normalised length in bytes; *used gets the raw bytes it took. A
 * malformed byte becomes U+FFFD (3 bytes), a literal '▁' becomes the space it
 * stands for (1 byte); out needs room for 4 bytes. */
static int normalize_char(const unsigned char *raw, size_t n, char *out, size_t *used) {
    int len = utf8_length(raw, n);
    if (len == 0) {
        memcpy(out, "\xEF\xBF\xBD", 3);
        *used = 1;
        return 3;
    }
    if (len == 3 && memcmp(raw, "\xE2\x96\x81", 3) == 0) {
        out[0] = ' ';
        *used = 3;
        return 1;
    }
    memcpy(out, raw, (size_t)len);
    *used = (size_t)len;
    return len;
}

/* ------------------------------------------------------------------------
 * Encoding. */

typedef struct {
    int start, len;     /* bytes text[start .. start+len) in the normalised text */
    int prev, next;     /* neighbours in the linked list of live symbols, -1 = none */
} Symbol;

typedef struct {
    float score;        /* score of the piece the merge would form */
    int left, right;    /* the two symbols */
    int len;            /* their total length when the candidate was made */
} Candidate;

typedef struct {
    Candidate *items;
    int count, capacity;
} Heap;

/* The heap order: higher score first; on equal scores, the leftmost pair.
 * (SentencePiece breaks ties the same way, by the left symbol's index.) */
static int comes_first(const Candidate *a, const Candidate *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(Heap *h, Candidate c) {
    if (h->count == h->capacity) {
        h->capacity = h->capacity ? 2 * h->capacity : 64;
        h->items = xrealloc(h->items, (size_t)h->capacity * sizeof(Candidate));
    }
    int i = h->count++;                     /* sift up */
    while (i > 0 && comes_first(&c, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = c;
}

static Candidate heap_pop(Heap *h) {
    Candidate top = h->items[0];
    Candidate last = h->items[--h->count];
    int i = 0;                              /* sift down */
    for (;;) {
        int child = 2 * i + 1;
        if (child >= h->count) break;
        if (child + 1 < h->count && comes_first(&h->items[child + 1], &h->items[child])) child++;
        if (!comes_first(&h->items[child], &last)) break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->count > 0) h->items[i] = last;
    return top;
}

/* If symbols left and right together spell a mergeable piece, queue them. */
static void add_candidate(const Tokenizer *t, const char *text, const Symbol *symbols,
                          int left, int right, Heap *heap) {
    if (left < 0 || right < 0) return;
    int len = symbols[left].len + symbols[right].len;
    if (len > t->max_piece_length) return;          /* cannot be a piece */
    int id = lookup_piece(t, text + symbols[left].start, (size_t)len);
    if (id < 0) return;
    Candidate c = {t->scores[id], left, right, len};
    heap_push(heap, c);
}

static int *encode_byte_level(const Tokenizer *t, const unsigned char *raw, size_t raw_len,
                              int add_bos, int add_eos, int *n_tokens);

int *tokenizer_encode(const Tokenizer *t, const char *raw_text, size_t raw_len,
                      int add_bos, int add_eos, int *n_tokens) {
    const unsigned char *raw = (const unsigned char *)raw_text;
    if (t->kind != TOKENIZER_SENTENCEPIECE) return encode_byte_level(t, raw, raw_len, add_bos, add_eos, n_tokens);
    /* Step 1, normalise. Worst case every input byte is malformed and
     * becomes the 3-byte U+FFFD, plus one byte of dummy prefix. */
    char *text = xmalloc(3 * raw_len + 2);
    Symbol *symbols = xmalloc((raw_len + 1) * sizeof(Symbol));
    int n_symbols = 0;
    size_t text_len = 0;
    if (raw_len > 0 && t->add_dummy_prefix) {
        symbols[n_symbols++] = (Symbol){0, 1, -1, -1};
        text[text_len++] = ' ';
    }
    /* Step 2, one symbol per character. */
    for (size_t i = 0; i < raw_len;) {
        size_t used;
        int len = normalize_char(raw + i, raw_len - i, text + text_len, &used);
        symbols[n_symbols++] = (Symbol){(int)text_len, len, -1, -1};
        text_len += (size_t)len;
        i += used;
    }
    for (int i = 0; i < n_symbols; i++) {
        symbols[i].prev = i - 1;
        symbols[i].next = (i + 1 < n_symbols) ? i + 1 : -1;
    }

    /* Step 3, merge. Every neighbouring pair that spells a piece is a
     * candidate; pop the best, merge it, and queue the two new pairs it makes
     * with its neighbours. A popped candidate whose symbols have changed
     * since it was queued is stale: one of them has been merged away (len 0)
     * or has grown (lengths no longer add up). Skip it. */
    Heap heap = {0};
    for (int i = 0; i + 1 < n_symbols; i++) add_candidate(t, text, symbols, i, i + 1, &heap);
    while (heap.count > 0) {
        Candidate c = heap_pop(&heap);
        Symbol *left = &symbols[c.left], *right = &symbols[c.right];
        if (left->len == 0 || right->len == 0 || left->len + right->len != c.len) continue;
        left->len += right->len;            /* left absorbs right */
        right->len = 0;
        left->next = right->next;
        if (right->next >= 0) symbols[right->next].prev = c.left;
        add_candidate(t, text, symbols, left->prev, c.left, &heap);
        add_candidate(t, text, symbols, c.left, left->next, &heap);
    }
    free(heap.items);

    /* Step 4, emit ids; a symbol that is no piece falls back to its bytes. */
    int *ids = xmalloc((text_len + 2) * sizeof(int));
    int n = 0;
    if (add_bos && t->bos_id >= 0) ids[n++] = t->bos_id;
    int byte_fallback = 0;                  /* does the vocabulary have byte pieces? */
    for (int b = 0; b < 256; b++) byte_fallback |= t->byte_ids[b] >= 0;
    int unk = t->unk_id >= 0 ? t->unk_id : 0;
    int previous_unknown = 0;
    for (int i = (n_symbols > 0 ? 0 : -1); i >= 0; i = symbols[i].next) {
        int id = lookup_piece(t, text + symbols[i].start, (size_t)symbols[i].len);
        if (id >= 0) {
            ids[n++] = id;
            previous_unknown = 0;
        } else if (byte_fallback) {
            for (int b = 0; b < symbols[i].len; b++) {
                int byte_id = t->byte_ids[(unsigned char)text[symbols[i].start + b]];
                ids[n++] = byte_id >= 0 ? byte_id : unk;
            }
        } else {
            /* Without byte pieces SentencePiece emits a single <unk> for a
             * whole run of unknown characters. */
            if (!previous_unknown) ids[n++] = unk;
            previous_unknown = 1;
        }
    }
    if (add_eos && t->eos_id >= 0) ids[n++] = t->eos_id;
    free(text);
    free(symbols);
    *n_tokens = n;
    return ids;
}

/* ------------------------------------------------------------------------
 * Byte-level BPE: GPT-2, Llama 3, SmolLM2.
 *
 * These vocabularies start from the 256 bytes: every byte has a piece, so
 * any text can be encoded and nothing is ever unknown. Encoding is three
 * steps:
 *   1. Cut out the added tokens (<|im_start|>, <|endoftext|>, ...) where they
 *      appear in the text; each becomes its own id.
 *   2. Split the rest into words with the tokenizer's pattern (below). BPE
 *      never merges across two words, so " the" and "cat" stay apart.
 *   3. Each word: one piece per byte, then repeatedly merge the neighbouring
 *      pair that comes first in the merge list (lowest rank; the leftmost
 *      such pair on a tie) until no neighbouring pair is in the list.
 * Hugging Face's tokenizer.json stores pieces with each byte written as a
 * printable character (GPT-2's "byte to unicode" map: 'Ġ' for a space);
 * export.py undoes that map, so here pieces are the plain bytes they stand
 * for, and decoding is just copying them.
 *
 * The patterns are regular expressions in the tokenizers (Python syntax):
 *   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * \p{L} is a letter, \p{N} a number, \s whitespace (unicode_table.h). At
 * each position the first alternative that matches wins, and the next word
 * starts where it ends. Written out by hand below, one function per
 * pattern, so no regex library is needed. SmolLM2 first cuts every number
 * character out on its own (Hugging Face's Digits(individual_digits=True)),
 * then applies GPT-2's pattern to the pieces in between. */

typedef enum { UNICODE_OTHER, UNICODE_LETTER, UNICODE_NUMBER, UNICODE_WHITESPACE } UnicodeClass;
typedef struct {
    uint32_t first, last;   /* code points first..last all have class cls */
    unsigned char cls;
} UnicodeRun;
#include "unicode_table.h"

static int unicode_class(uint32_t cp) {
    if (cp < 0x80) {        /* ASCII, the common case, without a search */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return UNICODE_LETTER;
        if (cp >= '0' && cp <= '9') return UNICODE_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return UNICODE_WHITESPACE;
        return UNICODE_OTHER;
    }
    int lo = 0, hi = (int)(sizeof unicode_runs / sizeof unicode_runs[0]) - 1;
    while (lo <= hi) {      /* binary search for the run that holds cp */
        int mid = (lo + hi) / 2;
        if (cp < unicode_runs[mid].first) hi = mid - 1;
        else if (cp > unicode_runs[mid].last) lo = mid + 1;
        else return unicode_runs[mid].cls;
    }
    return UNICODE_OTHER;
}

/* The text as code points: cp[i] and its class cls[i], for i < n. */
typedef struct {
    const uint32_t *cp;
    const unsigned char *cls;
} CodePoints;

static int run_end(const CodePoints *s, int i, int n, int cls) {
    while (i < n && s->cls[i] == cls) i++;
    return i;
}

static int is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

/* 's 't 're 've 'm 'll 'd at i: their length, or 0. Llama 3 ignores case
 * (and its regex engine folds U+017F, the long s, to 's'). */
static int contraction(const CodePoints *s, int i, int n, int ignore_case) {
    if (s->cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = s->cp[i + 1], b = i + 2 < n ? s->cp[i + 2] : 0;
    if (ignore_case) {
        if (a < 0x80) a |= 0x20;            /* ASCII lower case */
        if (b < 0x80 && b) b |= 0x20;
        if (a == 0x17F) a = 's';
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at i (whitespace): the whole run, except that a run of two
 * or more followed by a non-space leaves its last character to the next
 * word (so " the" keeps its space). */
static int whitespace_word(const CodePoints *s, int i, int n) {
    int end = run_end(s, i, n, UNICODE_WHITESPACE);
    return (end < n && end - i >= 2) ? end - 1 : end;
}

/* The end of GPT-2's word that starts at i (the text ends at n). */
static int gpt2_word(const CodePoints *s, int i, int n) {
    int k = contraction(s, i, n, 0);
    if (k) return i + k;
    /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class */
    int j = (s->cp[i] == ' ' && i + 1 < n && s->cls[i + 1] != UNICODE_WHITESPACE) ? i + 1 : i;
    if (s->cls[j] != UNICODE_WHITESPACE) return run_end(s, j, n, s->cls[j]);
    return whitespace_word(s, i, n);
}

/* The end of Llama 3's word that starts at i. */
static int llama3_word(const CodePoints *s, int i, int n) {
    int k = contraction(s, i, n, 1);
    if (k) return i + k;
    int c = s->cls[i];
    /* [^\r\n\p{L}\p{N}]?\p{L}+ : letters, perhaps after one other character */
    if (c == UNICODE_LETTER) return run_end(s, i, n, UNICODE_LETTER);
    if (c != UNICODE_NUMBER && !is_newline(s->cp[i]) && i + 1 < n && s->cls[i + 1] == UNICODE_LETTER)
        return run_end(s, i + 1, n, UNICODE_LETTER);
    /* \p{N}{1,3} : at most three number characters */
    if (c == UNICODE_NUMBER) {
        int end = i;
        while (end < n && end - i < 3 && s->cls[end] == UNICODE_NUMBER) end++;
        return end;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' : punctuation and the like, with the line breaks after it */
    int j = (s->cp[i] == ' ' && i + 1 < n) ? i + 1 : i;
    if (s->cls[j] == UNICODE_OTHER) {
        int end = run_end(s, j, n, UNICODE_OTHER);
        while (end < n && is_newline(s->cp[end])) end++;
        return end;
    }
    /* \s*[\r\n]+ : whitespace up to and including its last line break */
    int end = run_end(s, i, n, UNICODE_WHITESPACE), last_newline = -1;
    for (int m = i; m < end; m++)
        if (is_newline(s->cp[m])) last_newline = m;
    if (last_newline >= 0) return last_newline + 1;
    return whitespace_word(s, i, n);
}

/* Merge the bytes of one word into pieces (step 3); ids gets them and the
 * count is returned. rank is scratch: rank[k] is the merge rank of the pair
 * (ids[k], ids[k+1]), -1 if it is not in the list. */
static int bpe_word(const Tokenizer *t, const unsigned char *bytes, int len, int *ids, int *rank) {
    int n = 0;
    for (int k = 0; k < len; k++)
        if (t->byte_ids[bytes[k]] >= 0) ids[n++] = t->byte_ids[bytes[k]];
    for (int k = 0; k + 1 < n; k++) rank[k] = merge_rank(t, ids[k], ids[k + 1]);
    while (n > 1) {
        int best = -1;
        for (int k = 0; k + 1 < n; k++)
            if (rank[k] >= 0 && (best < 0 || rank[k] < rank[best])) best = k;
        if (best < 0) break;
        /* ids[best], ids[best+1] -> one piece; the pairs after it move left */
        ids[best] = t->merge_result[rank[best]];
        memmove(ids + best + 1, ids + best + 2, (size_t)(n - best - 2) * sizeof(int));
        memmove(rank + best, rank + best + 1, (size_t)(n - best - 2) * sizeof(int));
        n--;
        if (best > 0) rank[best - 1] = merge_rank(t, ids[best - 1], ids[best]);
        if (best + 1 < n) rank[best] = merge_rank(t, ids[best], ids[best + 1]);
    }
    return n;
}

/* Split text[from..to) (code points) into words, and emit their pieces. */
static int encode_words(const Tokenizer *t, const CodePoints *s, const unsigned char *text,
                        const size_t *offset, int from, int to, int *ids, int *rank) {
    int n = 0;
    for (int i = from; i < to;) {
        int end;
        if (t->kind == TOKENIZER_LLAMA3) end = llama3_word(s, i, to);
        else if (t->kind == TOKENIZER_GPT2) end = gpt2_word(s, i, to);
        else if (s->cls[i] == UNICODE_NUMBER) end = i + 1;   /* SmolLM: each digit alone */
        else {
            int stop = i;                                    /* GPT-2 up to the next digit */
            while (stop < to && s->cls[stop] != UNICODE_NUMBER) stop++;
            end = gpt2_word(s, i, stop);
        }
        n += bpe_word(t, text + offset[i], (int)(offset[end] - offset[i]), ids + n, rank);
        i = end;
    }
    return n;
}

/* The number of bytes at s (n available) that the Unicode standard's
 * "maximal subpart" rule, followed by Python's decoder, replaces with one
 * U+FFFD: a start byte and those of its continuation bytes that fit. Only
 * called where utf8_length found no valid character. */
static int utf8_bad_length(const unsigned char *s, size_t n) {
    unsigned char lo, hi;
    int len = utf8_start(s[0], &lo, &hi);
    if (len == 0 || n < 2 || s[1] < lo || s[1] > hi) return 1;
    int k = 2;
    while (k < len && (size_t)k < n && s[k] >= 0x80 && s[k] <= 0xBF) k++;
    return k;
}

/* The added token that starts at text (len bytes left), longest first, or -1. */
static int added_token_at(const Tokenizer *t, const unsigned char *text, size_t len) {
    if (!t->starts_added[text[0]]) return -1;
    for (int a = 0; a < t->n_added; a++) {
        int id = t->added_ids[a];
        size_t piece_len = (size_t)t->piece_lengths[id];
        if (piece_len <= len && memcmp(text, t->pieces[id], piece_len) == 0) return id;
    }
    return -1;
}

static int *encode_byte_level(const Tokenizer *t, const unsigned char *raw, size_t raw_len,
                              int add_bos, int add_eos, int *n_tokens) {
    /* The text as valid UTF-8 (each bad sequence -> U+FFFD, 3 bytes) and as
     * code points; offset[i] is where code point i starts in text. */
    unsigned char *text = xmalloc(3 * raw_len + 1);
    uint32_t *cp = xmalloc((raw_len + 1) * sizeof(uint32_t));
    unsigned char *cls = xmalloc(raw_len + 1);
    size_t *offset = xmalloc((raw_len + 1) * sizeof(size_t));
    int n_cp = 0;
    size_t text_len = 0;
    for (size_t i = 0; i < raw_len;) {
        int len = utf8_length(raw + i, raw_len - i);
        offset[n_cp] = text_len;
        if (len == 0) {
            i += (size_t)utf8_bad_length(raw + i, raw_len - i);
            memcpy(text + text_len, "\xEF\xBF\xBD", 3);
            text_len += 3;
            cp[n_cp] = 0xFFFD;
        } else {
            memcpy(text + text_len, raw + i, (size_t)len);
            text_len += (size_t)len;
            cp[n_cp] = code_point(raw + i, len);
            i += (size_t)len;
        }
        cls[n_cp] = (unsigned char)unicode_class(cp[n_cp]);
        n_cp++;
    }
    offset[n_cp] = text_len;
    CodePoints s = {cp, cls};

    int *ids = xmalloc((text_len + 2) * sizeof(int));   /* at most one id per byte */
    int *rank = xmalloc((text_len + 1) * sizeof(int));
    int n = 0, from = 0;
    if (add_bos && t->bos_id >= 0) ids[n++] = t->bos_id;
    for (int i = 0; i < n_cp;) {
        int id = added_token_at(t, text + offset[i], text_len - offset[i]);
        if (id < 0) { i++; continue; }
        n += encode_words(t, &s, text, offset, from, i, ids + n, rank);
        ids[n++] = id;
        size_t end = offset[i] + (size_t)t->piece_lengths[id];
        while (i < n_cp && offset[i] < end) i++;
        from = i;
    }
    n += encode_words(t, &s, text, offset, from, n_cp, ids + n, rank);
    if (add_eos && t->eos_id >= 0) ids[n++] = t->eos_id;
    free(text);
    free(cp);
    free(cls);
    free(offset);
    free(rank);
    *n_tokens = n;
    return ids;
}

/* ------------------------------------------------------------------------
 * Decoding. */

const char *tokenizer_decode(const Tokenizer *t, int prev_id, int id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->vocab_size) return "";
    const char *piece = t->pieces[id];
    if (t->kind != TOKENIZER_SENTENCEPIECE) {   /* byte-level: the piece's bytes, as they are */
        if (t->types[id] == PIECE_CONTROL) return "";
        *len = (size_t)t->piece_lengths[id];
        return piece;
    }
    switch (t->types[id]) {
    case PIECE_BYTE: {
        int b = parse_byte_piece(piece, t->piece_lengths[id]);
        *len = 1;
        return (const char *)t->byte_text[b];
    }
    case PIECE_CONTROL:
    case PIECE_UNUSED:
        return "";
    case PIECE_UNKNOWN:
        *len = 5;
        return " \xE2\x81\x87 ";            /* " ⁇ ", what SentencePiece prints for <unk> */
    default:
        *len = (size_t)t->piece_lengths[id];
        /* The dummy prefix put a space before the first word; take it off. */
        if (t->add_dummy_prefix && (prev_id < 0 || prev_id == t->bos_id) && piece[0] == ' ') {
            piece++;
            (*len)--;
        }
        return piece;
    }
}

/* Printing to a terminal, one UTF-8 character at a time (see tokenizer.h). */

static void print_replacement(FILE *out) { fputs("\xEF\xBF\xBD", out); }

void utf8_print(Utf8Printer *p, const char *bytes, size_t len, FILE *out) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (p->n_pending > 0) {
            /* We are inside a multi-byte character: does c continue it? */
            p->pending[p->n_pending] = c;
            int need = p->pending[0] >= 0xF0 ? 4 : p->pending[0] >= 0xE0 ? 3 : 2;
            unsigned char padded[4] = {0x80, 0x80, 0x80, 0x80};
            memcpy(padded, p->pending, (size_t)p->n_pending + 1);
            if (utf8_length(padded, 4) == need) {   /* still a valid prefix */
                if (++p->n_pending == need) {
                    fwrite(p->pending, 1, (size_t)need, out);
                    p->n_pending = 0;
                }
                continue;
            }
            print_replacement(out);          /* the character was cut short */
            p->n_pending = 0;                /* and c starts afresh below */
        }
        if (c < 0x80) {
            /* printable ASCII and \n \t \r pass; other control characters
             * (ESC, BEL, DEL, ...) are dropped */
            if ((c >= 0x20 && c != 0x7F) || c == '\n' || c == '\t' || c == '\r') fputc(c, out);
        } else if (c >= 0xC2 && c <= 0xF4) {
            p->pending[0] = c;
            p->n_pending = 1;
        } else {
            print_replacement(out);
        }
    }
}

void utf8_flush(Utf8Printer *p, FILE *out) {
    if (p->n_pending > 0) print_replacement(out);
    p->n_pending = 0;
    fflush(out);
}

/* ------------------------------------------------------------------------
 * Training: learn a vocabulary from text (`./tokenizer train`).
 *
 * The encoder above needs a vocabulary: pieces with scores. Byte-pair
 * encoding learns one from text. Start with one piece per character; then,
 * again and again, find the pair of neighbouring symbols that occurs most
 * often in the text, make their concatenation a new piece, and glue that pair
 * together everywhere. In TinyStories the first new pieces are "he", "▁t",
 * "▁a", "▁s", "▁w", "nd", "▁the", ... Stop when the vocabulary has the size
 * asked for.
 *
 * The order is the whole model: the k-th piece made (k = 0, 1, ...) gets the
 * score -k, so the encoder, which always merges the highest-scoring pair
 * first, replays the merges in the order training made them.
 *
 * Words. SentencePiece splits every line (a training "sentence") into words,
 * each starting with its space: "▁Once▁upon▁a▁time" (the dummy prefix gives
 * the first word its ▁) is "▁Once", "▁upon", "▁a", "▁time". Merges never
 * cross words, so a piece may start with ▁ but has none elsewhere. That turns
 * the text into a bag of words, and each distinct word need only be handled
 * once, weighted by how often it occurs: data/tinystories/train.txt has
 * 815,853 words but only 21,541 distinct ones.
 *
 * The data structures:
 *   words     every distinct word: its count, and its current segmentation,
 *             a short array of symbols that shrinks as merges glue them,
 *             with the pair between each two neighbours beside it.
 *   strings   every string the trainer deals with, in a hash table: the
 *             characters, and every "pair", the concatenation of two
 *             neighbouring symbols somewhere in a word. A pair knows its count
 *             (its occurrences, each word's times that word's count) and the
 *             list of words it occurs in. A pair that is chosen becomes a piece.
 *   queue     a priority queue (binary max-heap) of pairs by count, so finding
 *             the most frequent pair costs O(log n), not a scan of all pairs.
 *
 * One step: take the most frequent pair from the queue; it becomes a piece.
 * Every word in its list is re-segmented: the word's pairs are taken out of
 * the counts, its symbols are merged the way the encoder would merge them,
 * and its new pairs are counted back in. Only the words that contain the pair
 * are touched, so a step costs what it changes, not a pass over the text.
 *
 * Why pairs are strings, not (left symbol, right symbol): the encoder knows
 * nothing of how a piece was made. It merges two neighbours whenever their
 * concatenation is a piece, so "▁a"+"nd" and "▁an"+"d" both become "▁and".
 * Counting pairs by their text, and re-segmenting words with the encoder's own
 * rule, keeps trainer and encoder in step: encoding the training text gives
 * exactly the trainer's final segmentation of it (tests/test_tokenizer.c
 * checks this). SentencePiece's trainer counts (left, right) pairs and skips a
 * piece whose text it made before, so there the two can disagree on a few
 * words.
 *
 * The queue is lazy: changing a count does not search the heap. At the end
 * of a step every pair whose count changed is pushed again with its new
 * count; an entry whose count is no longer the pair's count (or whose pair is
 * a piece by now) is stale, and is dropped when it reaches the top. When no
 * pair occurs any more, training goes on, as SentencePiece's does, with pairs
 * that occurred earlier (count 0), until those run out too.
 *
 * Ties, so that the same text and options always give the same bytes: among
 * pairs with equal counts the one with fewer characters wins, then the one
 * whose UTF-8 text sorts first, byte by byte, with ▁ as its bytes E2 96 81
 * (not the space it is stored as). Characters with equal counts: the lower
 * code point first. These are SentencePiece's rules, and nothing depends on
 * hash values or the order of words in memory. With them, this trainer makes
 * exactly SentencePiece's vocabulary from TinyStories and from Shakespeare,
 * piece for piece (tools/compare_tokenizer_training.py, docs/tokenizer.md).
 *
 * Which pairs may become pieces (SentencePiece's rules, with its defaults):
 *   - at most 16 characters (max_sentencepiece_length);
 *   - ▁ only at the start (words are split at ▁, so this holds by itself);
 *   - one Unicode script per piece: letters do not merge with digits,
 *     punctuation or symbols (script "Common"), nor with letters of another
 *     script; combining marks go with the letter before them, and Hiragana
 *     and Katakana count as Han (split_by_unicode_script, see script_of);
 *   - a character without a piece of its own (below) merges with nothing.
 *
 * Characters. Every character gets a piece, except the rarest ones, which
 * together make up less than 1 - character_coverage of the text (0.05% by
 * default); those fall back to <0xAB> byte pieces like any character the
 * vocabulary lacks. U+0000 never gets a piece (C strings, and llama2.c, could
 * not hold it).
 *
 * The vocabulary comes out in SentencePiece's layout: 0 <unk>, 1 <s>, 2 </s>,
 * 3..258 the bytes <0x00>..<0xFF>, then the merged pieces in the order they
 * were made (scores 0, -1, -2, ...), then the characters, most frequent first,
 * with the scores that follow. A character's score does not matter: no merge
 * can make a single character. */

#define MAX_PIECE_CHARS 16      /* SentencePiece's max_sentencepiece_length */
#define N_FIXED_PIECES 259      /* <unk>, <s>, </s> and the 256 byte pieces */
#define MAX_TRAIN_VOCAB 1000000 /* a sanity limit; Llama 3 has 128,256 pieces */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Unicode scripts, simplified. SentencePiece looks every character up in the
 * full Unicode Scripts.txt; this table names the blocks of the scripts most
 * text is written in and calls everything else Common (digits, punctuation,
 * symbols, emoji: what Unicode calls Common, too). A few punctuation marks
 * inside a script's block count as that script here; that is the whole
 * difference. SCRIPT_NONE is for characters that take the script of their
 * neighbours: ▁ and the combining marks (Unicode's "Inherited"). */
enum {
    SCRIPT_NONE = -1, SCRIPT_COMMON, SCRIPT_LATIN, SCRIPT_GREEK, SCRIPT_CYRILLIC,
    SCRIPT_ARMENIAN, SCRIPT_HEBREW, SCRIPT_ARABIC, SCRIPT_SYRIAC, SCRIPT_THAANA,
    SCRIPT_DEVANAGARI, SCRIPT_BENGALI, SCRIPT_GURMUKHI, SCRIPT_GUJARATI, SCRIPT_ORIYA,
    SCRIPT_TAMIL, SCRIPT_TELUGU, SCRIPT_KANNADA, SCRIPT_MALAYALAM, SCRIPT_SINHALA,
    SCRIPT_THAI, SCRIPT_LAO, SCRIPT_TIBETAN, SCRIPT_MYANMAR, SCRIPT_GEORGIAN,
    SCRIPT_HANGUL, SCRIPT_ETHIOPIC, SCRIPT_KHMER, SCRIPT_MONGOLIAN,
    SCRIPT_HAN,             /* with Hiragana and Katakana, as SentencePiece does */
};

static const struct { uint32_t first, last; int script; } SCRIPT_RANGES[] = {
    {0x0041, 0x005A, SCRIPT_LATIN},    {0x0061, 0x007A, SCRIPT_LATIN},
    {0x00AA, 0x00AA, SCRIPT_LATIN},    {0x00BA, 0x00BA, SCRIPT_LATIN},
    {0x00C0, 0x00D6, SCRIPT_LATIN},    {0x00D8, 0x00F6, SCRIPT_LATIN},
    {0x00F8, 0x02AF, SCRIPT_LATIN},    {0x0300, 0x036F, SCRIPT_NONE},
    {0x0370, 0x03FF, SCRIPT_GREEK},    {0x0400, 0x052F, SCRIPT_CYRILLIC},
    {0x0531, 0x058F, SCRIPT_ARMENIAN}, {0x0591, 0x05FF, SCRIPT_HEBREW},
    {0x0600, 0x064A, SCRIPT_ARABIC},   {0x064B, 0x065F, SCRIPT_NONE},
    {0x0660, 0x066F, SCRIPT_ARABIC},   {0x0670, 0x0670, SCRIPT_NONE},
    {0x0671, 0x06FF, SCRIPT_ARABIC},   {0x0700, 0x074F, SCRIPT_SYRIAC},
    {0x0750, 0x077F, SCRIPT_ARABIC},   {0x0780, 0x07BF, SCRIPT_THAANA},
    {0x0900, 0x097F, SCRIPT_DEVANAGARI}, {0x0980, 0x09FF, SCRIPT_BENGALI},
    {0x0A00, 0x0A7F, SCRIPT_GURMUKHI}, {0x0A80, 0x0AFF, SCRIPT_GUJARATI},
    {0x0B00, 0x0B7F, SCRIPT_ORIYA},    {0x0B80, 0x0BFF, SCRIPT_TAMIL},
    {0x0C00, 0x0C7F, SCRIPT_TELUGU},   {0x0C80, 0x0CFF, SCRIPT_KANNADA},
    {0x0D00, 0x0D7F, SCRIPT_MALAYALAM}, {0x0D80, 0x0DFF, SCRIPT_SINHALA},
    {0x0E00, 0x0E7F, SCRIPT_THAI},     {0x0E80, 0x0EFF, SCRIPT_LAO},
    {0x0F00, 0x0FFF, SCRIPT_TIBETAN},  {0x1000, 0x109F, SCRIPT_MYANMAR},
    {0x10A0, 0x10FF, SCRIPT_GEORGIAN}, {0x1100, 0x11FF, SCRIPT_HANGUL},
    {0x1200, 0x139F, SCRIPT_ETHIOPIC}, {0x1780, 0x17FF, SCRIPT_KHMER},
    {0x1800, 0x18AF, SCRIPT_MONGOLIAN}, {0x1AB0, 0x1AFF, SCRIPT_NONE},
    {0x1C80, 0x1C8F, SCRIPT_CYRILLIC}, {0x1DC0, 0x1DFF, SCRIPT_NONE},
    {0x1E00, 0x1EFF, SCRIPT_LATIN},    {0x1F00, 0x1FFF, SCRIPT_GREEK},
    {0x200C, 0x200D, SCRIPT_NONE},     /* zero-width non-joiner and joiner */
    {0x20D0, 0x20FF, SCRIPT_NONE},     {0x2C60, 0x2C7F, SCRIPT_LATIN},
    {0x2D00, 0x2D2F, SCRIPT_GEORGIAN}, {0x2DE0, 0x2DFF, SCRIPT_CYRILLIC},
    {0x2E80, 0x2FDF, SCRIPT_HAN},      {0x3005, 0x3005, SCRIPT_HAN},
    {0x3007, 0x3007, SCRIPT_HAN},      {0x3021, 0x3029, SCRIPT_HAN},
    {0x302A, 0x302D, SCRIPT_NONE},     {0x3038, 0x303B, SCRIPT_HAN},
    {0x3041, 0x3096, SCRIPT_HAN},      {0x3099, 0x309A, SCRIPT_NONE},
    {0x309D, 0x309F, SCRIPT_HAN},      {0x30A1, 0x30FA, SCRIPT_HAN},
    {0x30FC, 0x30FF, SCRIPT_HAN},      {0x3131, 0x318E, SCRIPT_HANGUL},
    {0x31F0, 0x31FF, SCRIPT_HAN},      {0x3400, 0x4DBF, SCRIPT_HAN},
    {0x4E00, 0x9FFF, SCRIPT_HAN},      {0xA640, 0xA69F, SCRIPT_CYRILLIC},
    {0xA720, 0xA7FF, SCRIPT_LATIN},    {0xA960, 0xA97F, SCRIPT_HANGUL},
    {0xAC00, 0xD7FF, SCRIPT_HANGUL},   {0xF900, 0xFAFF, SCRIPT_HAN},
    {0xFB1D, 0xFB4F, SCRIPT_HEBREW},   {0xFB50, 0xFDFF, SCRIPT_ARABIC},
    {0xFE00, 0xFE0F, SCRIPT_NONE},     /* variation selectors (emoji style) */
    {0xFE20, 0xFE2F, SCRIPT_NONE},     {0xFE70, 0xFEFC, SCRIPT_ARABIC},
    {0xFF21, 0xFF3A, SCRIPT_LATIN},    {0xFF41, 0xFF5A, SCRIPT_LATIN},
    {0xFF66, 0xFF9D, SCRIPT_HAN},      {0xFFA0, 0xFFDC, SCRIPT_HANGUL},
    {0x20000, 0x3FFFF, SCRIPT_HAN},    {0xE0100, 0xE01EF, SCRIPT_NONE},
};

/* The script of code point cp: a binary search of the (sorted) ranges. The
 * space, which stands for ▁, has none. */
static int script_of(uint32_t cp) {
    if (cp == ' ') return SCRIPT_NONE;
    int lo = 0, hi = (int)(sizeof SCRIPT_RANGES / sizeof SCRIPT_RANGES[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < SCRIPT_RANGES[mid].first) hi = mid - 1;
        else if (cp > SCRIPT_RANGES[mid].last) lo = mid + 1;
        else return SCRIPT_RANGES[mid].script;
    }
    return SCRIPT_COMMON;
}

/* A distinct word of the training text. */
typedef struct {
    size_t text;            /* offset of its bytes in Trainer.word_text ('▁' as ' ') */
    int len;                /* bytes */
    int64_t count;          /* occurrences in the text */
    int first_symbol;       /* its symbols are Trainer.symbols[first_symbol ...], and
                               the pairs between them Trainer.pairs[first_symbol ...] */
    int n_symbols;          /* how many; shrinks as merges glue symbols together */
} Word;

/* A string the trainer deals with: a character, or a pair (the concatenation
 * of two neighbouring symbols in some word), which may have become a piece. */
typedef struct {
    size_t text;            /* offset of its bytes in Trainer.string_text */
    int len;                /* bytes */
    int n_chars;            /* characters; a piece has at most MAX_PIECE_CHARS */
    int script;             /* SCRIPT_NONE, or the one script of its letters */
    uint64_t hash;          /* hash_bytes of its text */
    int piece;              /* -1, or its number in the vocabulary being built:
                               kept characters 0..n_kept-1, then the merges in
                               the order they were made */
    int64_t count;          /* a character: its occurrences in the text; a pair:
                               its occurrences as neighbours, each word's
                               multiplied by the word's count */
    int64_t queued_count;   /* a pair: the count of its newest entry in the queue */
    int *words;             /* a pair: the words it occurs in (a word may have
                               lost it since; a piece's list is freed) */
    int n_words;
    size_t words_capacity;
    int touched_step;       /* the last step that changed count */
    int mark;               /* a pair: the mark of the last word that listed it
                               (see count_pairs_in) */
} TrainString;

typedef struct {
    int64_t count;          /* the pair's count when this entry was pushed */
    int string;             /* the pair */
} QueuedPair;

typedef struct {
    const char *name;       /* the text's name, for messages */
    Word *words;
    int n_words;
    size_t words_capacity;
    char *word_text;        /* every distinct word's bytes, one after another */
    size_t word_text_len, word_text_capacity;
    int *word_table;        /* hash table: word text -> index in words, -1 = empty */
    size_t word_table_size;
    int *symbols;           /* every word's symbols: indices in strings, or -1 for
                               a character that has no piece */
    int *pairs;             /* pairs[i]: the pair string of symbols[i] and symbols[i+1]
                               (in the same word), or -1 if those may not merge */
    TrainString *strings;
    int n_strings;
    size_t strings_capacity;
    char *string_text;      /* every string's bytes; a string being looked up is
                               "staged" after the last one */
    size_t string_text_len, string_text_capacity;
    int *string_table;      /* hash table: text -> index in strings, -1 = empty */
    size_t string_table_size;
    QueuedPair *queue;      /* the max-heap of pairs */
    int queue_count;
    size_t queue_capacity;
    int *touched;           /* the pairs whose count changed in this step */
    int n_touched;
    size_t touched_capacity;
    int step;               /* 0 while counting, then k + 1 while making piece k */
    int mark;               /* the last mark handed out (see count_pairs_in) */
    int n_kept_chars;       /* characters that got a piece */
} Trainer;

/* Make room for `needed` elements in an array that has room for *capacity;
 * the capacity doubles, so appending n elements costs O(n) in all. */
static void *reserve(void *array, size_t *capacity, size_t needed, size_t element_size) {
    if (needed <= *capacity) return array;
    size_t grown = *capacity ? *capacity : 16;
    while (grown < needed) grown *= 2;
    *capacity = grown;
    return xrealloc(array, grown * element_size);
}

/* An empty hash table of `size` slots (a power of two). Both tables of the
 * trainer use open addressing with linear probing, like the tokenizer's, and
 * double when half full, which keeps probe sequences short. */
static int *new_table(size_t size) {
    int *table = xmalloc(size * sizeof(int));
    for (size_t i = 0; i < size; i++) table[i] = -1;
    return table;
}

static void grow_word_table(Trainer *tr) {
    free(tr->word_table);
    tr->word_table_size *= 2;
    tr->word_table = new_table(tr->word_table_size);
    size_t mask = tr->word_table_size - 1;
    for (int w = 0; w < tr->n_words; w++) {
        const Word *word = &tr->words[w];
        size_t slot = hash_bytes(tr->word_text + word->text, (size_t)word->len) & mask;
        while (tr->word_table[slot] >= 0) slot = (slot + 1) & mask;
        tr->word_table[slot] = w;
    }
}

static void grow_string_table(Trainer *tr) {
    free(tr->string_table);
    tr->string_table_size *= 2;
    tr->string_table = new_table(tr->string_table_size);
    size_t mask = tr->string_table_size - 1;
    for (int i = 0; i < tr->n_strings; i++) {
        size_t slot = tr->strings[i].hash & mask;
        while (tr->string_table[slot] >= 0) slot = (slot + 1) & mask;
        tr->string_table[slot] = i;
    }
}

/* Count one occurrence of the word s[0..len). */
static void add_word(Trainer *tr, const char *s, int len) {
    size_t mask = tr->word_table_size - 1;
    size_t slot = hash_bytes(s, (size_t)len) & mask;
    for (; tr->word_table[slot] >= 0; slot = (slot + 1) & mask) {
        Word *word = &tr->words[tr->word_table[slot]];
        if (word->len == len && memcmp(tr->word_text + word->text, s, (size_t)len) == 0) {
            word->count++;
            return;
        }
    }
    tr->words = reserve(tr->words, &tr->words_capacity, (size_t)tr->n_words + 1, sizeof(Word));
    tr->word_text = reserve(tr->word_text, &tr->word_text_capacity, tr->word_text_len + (size_t)len, 1);
    memcpy(tr->word_text + tr->word_text_len, s, (size_t)len);
    tr->words[tr->n_words] = (Word){tr->word_text_len, len, 1, 0, 0};
    tr->word_text_len += (size_t)len;
    tr->word_table[slot] = tr->n_words++;
    if (2 * (size_t)tr->n_words > tr->word_table_size) grow_word_table(tr);
}

/* Room to stage a string of len bytes after the last one in string_text.
 * (Call it before taking pointers into string_text: it may move it.) */
static char *staging_area(Trainer *tr, int len) {
    tr->string_text = reserve(tr->string_text, &tr->string_text_capacity,
                              tr->string_text_len + (size_t)len, 1);
    return tr->string_text + tr->string_text_len;
}

/* Look up the len bytes staged in string_text. Returns the string's index,
 * or, if there is none: -1 when !create, else a new string with these bytes
 * (and the given n_chars and script). */
static int find_staged_string(Trainer *tr, int len, int create, int n_chars, int script) {
    const char *text = tr->string_text + tr->string_text_len;
    uint64_t hash = hash_bytes(text, (size_t)len);
    size_t mask = tr->string_table_size - 1;
    size_t slot = hash & mask;
    for (; tr->string_table[slot] >= 0; slot = (slot + 1) & mask) {
        int i = tr->string_table[slot];
        const TrainString *s = &tr->strings[i];
        if (s->hash == hash && s->len == len &&
            memcmp(tr->string_text + s->text, text, (size_t)len) == 0)
            return i;
    }
    if (!create) return -1;
    tr->strings = reserve(tr->strings, &tr->strings_capacity, (size_t)tr->n_strings + 1,
                          sizeof(TrainString));
    TrainString *s = &tr->strings[tr->n_strings];
    memset(s, 0, sizeof *s);
    s->text = tr->string_text_len;
    s->len = len;
    s->n_chars = n_chars;
    s->script = script;
    s->hash = hash;
    s->piece = -1;
    s->touched_step = -1;
    s->mark = -1;
    tr->string_text_len += (size_t)len;         /* the staged bytes stay: committed */
    tr->string_table[slot] = tr->n_strings++;
    if (2 * (size_t)tr->n_strings > tr->string_table_size) grow_string_table(tr);
    return tr->n_strings - 1;
}

/* The pair string of neighbouring symbols a and b: its index, or -1 when the
 * two may not merge (see the rules above) or when the pair is not known yet
 * and !create. */
static int pair_string(Trainer *tr, int a, int b, int create) {
    if (a < 0 || b < 0) return -1;              /* a character without a piece */
    int n_chars = tr->strings[a].n_chars + tr->strings[b].n_chars;
    if (n_chars > MAX_PIECE_CHARS) return -1;
    int left_script = tr->strings[a].script, right_script = tr->strings[b].script;
    if (left_script != SCRIPT_NONE && right_script != SCRIPT_NONE && left_script != right_script)
        return -1;                              /* two scripts in one piece */
    int left_len = tr->strings[a].len, right_len = tr->strings[b].len;
    char *staged = staging_area(tr, left_len + right_len);
    memcpy(staged, tr->string_text + tr->strings[a].text, (size_t)left_len);
    memcpy(staged + left_len, tr->string_text + tr->strings[b].text, (size_t)right_len);
    return find_staged_string(tr, left_len + right_len, create, n_chars,
                              left_script != SCRIPT_NONE ? left_script : right_script);
}

/* Add delta to a pair's count and remember that it changed in this step. */
static void change_count(Trainer *tr, int pair, int64_t delta) {
    TrainString *s = &tr->strings[pair];
    s->count += delta;
    if (s->touched_step != tr->step) {
        s->touched_step = tr->step;
        tr->touched = reserve(tr->touched, &tr->touched_capacity, (size_t)tr->n_touched + 1, sizeof(int));
        tr->touched[tr->n_touched++] = pair;
    }
}

/* A string's bytes as SentencePiece has them, with ▁ as its UTF-8 bytes
 * E2 96 81 instead of the space we store; returns the length. (out has room
 * for a piece: MAX_PIECE_CHARS characters of at most 4 bytes.) */
static int sentencepiece_bytes(const Trainer *tr, const TrainString *s, unsigned char *out) {
    const char *text = tr->string_text + s->text;
    int n = 0;
    for (int i = 0; i < s->len; i++) {
        if (text[i] == ' ') {
            memcpy(out + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            out[n++] = (unsigned char)text[i];
        }
    }
    return n;
}

/* The queue order: the higher count first; on equal counts the string with
 * fewer characters, then the one whose UTF-8 bytes sort first (with ▁ as
 * E2 96 81, as in SentencePiece, so that ties go the same way there and
 * here). Two entries of the same pair with the same count are equivalent. */
static int queued_first(const Trainer *tr, QueuedPair a, QueuedPair b) {
    if (a.count != b.count) return a.count > b.count;
    const TrainString *x = &tr->strings[a.string], *y = &tr->strings[b.string];
    if (x->n_chars != y->n_chars) return x->n_chars < y->n_chars;
    unsigned char x_bytes[4 * MAX_PIECE_CHARS], y_bytes[4 * MAX_PIECE_CHARS];
    int x_len = sentencepiece_bytes(tr, x, x_bytes), y_len = sentencepiece_bytes(tr, y, y_bytes);
    int order = memcmp(x_bytes, y_bytes, (size_t)(x_len < y_len ? x_len : y_len));
    return order != 0 ? order < 0 : x_len < y_len;
}

static void queue_push(Trainer *tr, QueuedPair item) {
    tr->queue = reserve(tr->queue, &tr->queue_capacity, (size_t)tr->queue_count + 1, sizeof(QueuedPair));
    int i = tr->queue_count++;                      /* sift up */
    while (i > 0 && queued_first(tr, item, tr->queue[(i - 1) / 2])) {
        tr->queue[i] = tr->queue[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->queue[i] = item;
}

static QueuedPair queue_pop(Trainer *tr) {
    QueuedPair top = tr->queue[0];
    QueuedPair last = tr->queue[--tr->queue_count];
    int i = 0;                                      /* sift down */
    for (;;) {
        int child = 2 * i + 1;
        if (child >= tr->queue_count) break;
        if (child + 1 < tr->queue_count && queued_first(tr, tr->queue[child + 1], tr->queue[child]))
            child++;
        if (!queued_first(tr, tr->queue[child], last)) break;
        tr->queue[i] = tr->queue[child];
        i = child;
    }
    if (tr->queue_count > 0) tr->queue[i] = last;
    return top;
}

/* End of a step: queue every pair whose count changed, with its new count.
 * A count of 0 is queued too: when no pair occurs any more, the trainer goes
 * on, as SentencePiece does, with pairs that occurred earlier in training. */
static void queue_touched_pairs(Trainer *tr) {
    for (int i = 0; i < tr->n_touched; i++) {
        TrainString *s = &tr->strings[tr->touched[i]];
        if (s->piece >= 0 || s->count == s->queued_count) continue;
        s->queued_count = s->count;
        queue_push(tr, (QueuedPair){s->count, tr->touched[i]});
    }
    tr->n_touched = 0;
}

/* The most frequent pair, or -1 if no pair is left. */
static int pop_most_frequent_pair(Trainer *tr) {
    while (tr->queue_count > 0) {
        QueuedPair top = queue_pop(tr);
        const TrainString *s = &tr->strings[top.string];
        if (s->piece < 0 && top.count == s->count) return top.string;
        /* stale: the pair is a piece now, or its count changed since this
         * entry was pushed (and a newer entry has its current count) */
    }
    return -1;
}

/* Count the pairs of word w into the statistics, and list w with every pair
 * that does not carry the mark `already_listed`; the pairs listed get that
 * mark. (A mark is a number used for one word only, so a pair that occurs
 * twice in a word is listed once.) */
static void count_pairs_in(Trainer *tr, int w, int already_listed) {
    const Word *word = &tr->words[w];
    const int *pair = tr->pairs + word->first_symbol;
    for (int i = 0; i + 1 < word->n_symbols; i++) {
        if (pair[i] < 0) continue;
        change_count(tr, pair[i], word->count);
        TrainString *s = &tr->strings[pair[i]];
        if (s->mark == already_listed) continue;
        s->mark = already_listed;
        s->words = reserve(s->words, &s->words_capacity, (size_t)s->n_words + 1, sizeof(int));
        s->words[s->n_words++] = w;
    }
}

/* Does word w still contain pair p? (Its list may hold words it has left.) */
static int word_has_pair(const Trainer *tr, int w, int p) {
    const Word *word = &tr->words[w];
    const int *pair = tr->pairs + word->first_symbol;
    for (int i = 0; i + 1 < word->n_symbols; i++)
        if (pair[i] == p) return 1;
    return 0;
}

/* Word w contains a pair that has just become a piece: take its pairs out of
 * the counts, merge its symbols as the encoder would, count its new pairs in.
 *
 * The merging is the encoder's rule, written plainly: while some neighbouring
 * pair is a piece, merge the one made earliest (the highest score), the
 * leftmost of equals. Before this step no neighbours of any word formed a
 * piece (each word was left that way), so the merges start with the new
 * piece; a merge can make a neighbour pair that is an older piece, and the
 * loop takes that too, as the encoder would. */
static void resegment_word(Trainer *tr, int w) {
    Word *word = &tr->words[w];
    int *symbol = tr->symbols + word->first_symbol;
    int *pair = tr->pairs + word->first_symbol;
    int n = word->n_symbols;
    int old_pairs = ++tr->mark;     /* marks the pairs w had: it is in their lists already */
    for (int i = 0; i + 1 < n; i++) {
        if (pair[i] < 0) continue;
        change_count(tr, pair[i], -word->count);
        tr->strings[pair[i]].mark = old_pairs;
    }
    /* EXERCISE bpe-train BEGIN */
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < n; i++) {
            if (pair[i] < 0 || tr->strings[pair[i]].piece < 0) continue;
            if (best < 0 || tr->strings[pair[i]].piece < tr->strings[pair[best]].piece) best = i;
        }
        if (best < 0) break;
        symbol[best] = pair[best];                  /* symbol[best] absorbs symbol[best+1] */
        memmove(symbol + best + 1, symbol + best + 2, (size_t)(n - best - 2) * sizeof(int));
        memmove(pair + best, pair + best + 1, (size_t)(n - best - 2) * sizeof(int));
        n--;
        if (best > 0) pair[best - 1] = pair_string(tr, symbol[best - 1], symbol[best], 1);
        if (best + 1 < n) pair[best] = pair_string(tr, symbol[best], symbol[best + 1], 1);
    }
    /* EXERCISE bpe-train END */
    word->n_symbols = n;
    count_pairs_in(tr, w, old_pairs);
}

/* Split the text into lines, normalise each as the encoder does (dummy
 * prefix, '▁' as space, malformed bytes as U+FFFD) and count its words: each
 * word runs from a space up to the next one. */
static void count_words(Trainer *tr, const char *text, size_t len, long *n_lines, int64_t *n_words) {
    char *line = NULL;
    size_t line_capacity = 0;
    *n_lines = 0;
    *n_words = 0;
    for (size_t start = 0; start < len;) {
        const char *newline = memchr(text + start, '\n', len - start);
        size_t end = newline ? (size_t)(newline - text) : len;
        (*n_lines)++;
        if (end > start) {
            line = reserve(line, &line_capacity, 3 * (end - start) + 4, 1);
            size_t n = 0;
            line[n++] = ' ';                        /* the dummy prefix */
            for (size_t i = start; i < end;) {
                size_t used;
                n += (size_t)normalize_char((const unsigned char *)text + i, end - i, line + n, &used);
                i += used;
            }
            if (n > (size_t)INT_MAX / 2) fatal("%s: line %ld is too long", tr->name, *n_lines);
            for (size_t word_start = 0; word_start < n;) {
                size_t word_end = word_start + 1;
                while (word_end < n && line[word_end] != ' ') word_end++;
                add_word(tr, line + word_start, (int)(word_end - word_start));
                (*n_words)++;
                word_start = word_end;
            }
        }
        start = end + 1;
    }
    free(line);
}

typedef struct {
    int64_t count;
    uint32_t code_point;    /* for sorting: ▁ (stored as ' ') as U+2581 */
    int string;
} CharCount;

/* Most frequent first; equal counts by code point, as SentencePiece. */
static int compare_char_counts(const void *pa, const void *pb) {
    const CharCount *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return (a->code_point > b->code_point) - (a->code_point < b->code_point);
}

/* Count the characters of all words, give the most frequent ones pieces
 * (numbers 0, 1, ... in order of frequency) until they cover
 * character_coverage of the text, and write the kept ones' strings, in that
 * order, to *kept. Returns how many characters occur. */
static int choose_characters(Trainer *tr, double character_coverage, int **kept) {
    int64_t total = 0;
    for (int w = 0; w < tr->n_words; w++) {
        Word *word = &tr->words[w];
        for (int pos = 0; pos < word->len;) {
            const unsigned char *c = (const unsigned char *)tr->word_text + word->text + pos;
            int len = utf8_length(c, (size_t)(word->len - pos));   /* valid: normalised */
            pos += len;
            word->n_symbols++;
            if (len == 1 && c[0] == 0) continue;   /* U+0000 gets no piece */
            memcpy(staging_area(tr, len), c, (size_t)len);
            int s = find_staged_string(tr, len, 1, 1, script_of(code_point(c, len)));
            tr->strings[s].count += word->count;
            total += word->count;
        }
    }
    int n_chars = tr->n_strings;                    /* so far every string is a character */
    CharCount *chars = xmalloc((size_t)n_chars * sizeof(CharCount));
    for (int i = 0; i < n_chars; i++) {
        const TrainString *s = &tr->strings[i];
        const unsigned char *c = (const unsigned char *)tr->string_text + s->text;
        chars[i] = (CharCount){s->count, c[0] == ' ' ? 0x2581u : code_point(c, s->len), i};
    }
    qsort(chars, (size_t)n_chars, sizeof(CharCount), compare_char_counts);
    /* SentencePiece's loop: keep characters while the ones kept so far cover
     * less than character_coverage of all characters. (It compares in float;
     * so do we, to keep the same characters.) */
    *kept = xmalloc((size_t)n_chars * sizeof(int) + 1);
    int64_t covered = 0;
    tr->n_kept_chars = 0;
    for (int i = 0; i < n_chars; i++) {
        if ((float)((double)covered / (double)total) >= (float)character_coverage) break;
        covered += chars[i].count;
        tr->strings[chars[i].string].piece = tr->n_kept_chars;
        (*kept)[tr->n_kept_chars++] = chars[i].string;
    }
    free(chars);
    return n_chars;
}

/* Turn every word into one symbol per character (the character's string,
 * or -1 for a character that has no piece), and find the pairs between them. */
static void make_symbols(Trainer *tr) {
    size_t total = 0;
    for (int w = 0; w < tr->n_words; w++) {
        tr->words[w].first_symbol = (int)total;
        total += (size_t)tr->words[w].n_symbols;
        if (total > (size_t)INT_MAX) fatal("%s: too many distinct words to train on", tr->name);
    }
    tr->symbols = xmalloc(total * sizeof(int));
    tr->pairs = xmalloc(total * sizeof(int));
    for (int w = 0; w < tr->n_words; w++) {
        const Word *word = &tr->words[w];
        int *symbol = tr->symbols + word->first_symbol;
        for (int pos = 0; pos < word->len;) {
            const char *c = tr->word_text + word->text + pos;
            int len = utf8_length((const unsigned char *)c, (size_t)(word->len - pos));
            memcpy(staging_area(tr, len), c, (size_t)len);
            int s = find_staged_string(tr, len, 0, 1, SCRIPT_COMMON);  /* only a lookup */
            *symbol++ = (s >= 0 && tr->strings[s].piece >= 0) ? s : -1;
            pos += len;
        }
        int *pair = tr->pairs + word->first_symbol;
        symbol = tr->symbols + word->first_symbol;
        for (int i = 0; i + 1 < word->n_symbols; i++) pair[i] = pair_string(tr, symbol[i], symbol[i + 1], 1);
    }
}

/* Print a piece for people: ▁ for the space, \xAB for control bytes. */
static void print_piece(FILE *out, const char *s, int len) {
    fputc('"', out);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') fputs("\xE2\x96\x81", out);
        else if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') fprintf(out, "\\x%02X", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

/* The id a symbol of the trainer gets in the vocabulary (the layout above). */
static int final_id(const Trainer *tr, int n_merges, int string) {
    int piece = tr->strings[string].piece;
    return piece < tr->n_kept_chars ? N_FIXED_PIECES + n_merges + piece
                                    : N_FIXED_PIECES + piece - tr->n_kept_chars;
}

static void set_piece(Tokenizer *t, int id, const char *text, int len, float score, int type) {
    t->pieces[id] = xmalloc((size_t)len + 1);
    memcpy(t->pieces[id], text, (size_t)len);
    t->pieces[id][len] = '\0';
    t->piece_lengths[id] = len;
    t->scores[id] = score;
    t->types[id] = (unsigned char)type;
    if (len > t->max_piece_length) t->max_piece_length = len;
}

void tokenizer_train(Tokenizer *t, const char *text, size_t len, const TrainOptions *options,
                     const char *name, TrainedWords *trained) {
    double start = seconds_now();
    int verbose = options->verbose;
    if (options->vocab_size < N_FIXED_PIECES || options->vocab_size > MAX_TRAIN_VOCAB)
        fatal("vocabulary size %d is not sane: expected %d to %d pieces", options->vocab_size,
              N_FIXED_PIECES, MAX_TRAIN_VOCAB);
    if (!(options->character_coverage > 0 && options->character_coverage <= 1))
        fatal("character coverage %g is not in (0, 1]", options->character_coverage);

    Trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.name = name;
    tr.word_table_size = 1024;
    tr.word_table = new_table(tr.word_table_size);
    tr.string_table_size = 1024;
    tr.string_table = new_table(tr.string_table_size);

    /* 1. Words and characters. */
    long n_lines;
    int64_t n_words_total;
    count_words(&tr, text, len, &n_lines, &n_words_total);
    int *kept_chars;
    int n_chars = choose_characters(&tr, options->character_coverage, &kept_chars);
    if (tr.n_kept_chars == 0) fatal("%s: there is no text to learn from", name);
    int smallest = N_FIXED_PIECES + tr.n_kept_chars;
    if (options->vocab_size < smallest)
        fatal("vocabulary size %d is too small for %s: the %d special and byte pieces and the "
              "%d characters kept need %d", options->vocab_size, name, N_FIXED_PIECES,
              tr.n_kept_chars, smallest);
    if (verbose)
        fprintf(stderr, "train: %s: %ld lines, %lld words, %d distinct; %d characters, %d kept "
                "(coverage %g), the rest fall back to bytes\n", name, n_lines,
                (long long)n_words_total, tr.n_words, n_chars, tr.n_kept_chars,
                options->character_coverage);
    make_symbols(&tr);

    /* 2. The pairs of every word, counted once. */
    for (int w = 0; w < tr.n_words; w++) count_pairs_in(&tr, w, ++tr.mark);
    queue_touched_pairs(&tr);

    /* 3. Merge, one new piece per step. */
    int n_merges = options->vocab_size - smallest;
    int *merges = xmalloc((size_t)n_merges * sizeof(int) + 1);
    int report_every = n_merges / 10 > 0 ? n_merges / 10 : 1;
    for (int k = 0; k < n_merges; k++) {
        int best = pop_most_frequent_pair(&tr);
        if (best < 0)
            fatal("%s has only %d different pairs to merge, so at most %d pieces (asked for "
                  "%d): use a smaller vocabulary or more text", name, k, smallest + k,
                  options->vocab_size);
        int64_t best_count = tr.strings[best].count;
        tr.strings[best].piece = tr.n_kept_chars + k;
        merges[k] = best;
        tr.step = k + 1;
        /* Re-segment the words that contain the pair. Detach the list first:
         * re-segmenting adds strings, which may move tr.strings. */
        int *list = tr.strings[best].words, n_list = tr.strings[best].n_words;
        tr.strings[best].words = NULL;
        tr.strings[best].n_words = 0;
        for (int i = 0; i < n_list; i++)
            if (word_has_pair(&tr, list[i], best)) resegment_word(&tr, list[i]);
        free(list);
        queue_touched_pairs(&tr);
        if (verbose && ((k + 1) % report_every == 0 || k + 1 == n_merges)) {
            const TrainString *s = &tr.strings[best];
            fprintf(stderr, "train: %d/%d merges, %.2f s, last ", k + 1, n_merges, seconds_now() - start);
            print_piece(stderr, tr.string_text + s->text, s->len);
            fprintf(stderr, " (count %lld)\n", (long long)best_count);
        }
    }

    /* 4. The vocabulary, in SentencePiece's layout. */
    memset(t, 0, sizeof *t);
    alloc_pieces(t, options->vocab_size);
    t->add_dummy_prefix = 1;
    set_piece(t, 0, "<unk>", 5, 0, PIECE_UNKNOWN);
    set_piece(t, 1, "<s>", 3, 0, PIECE_CONTROL);
    set_piece(t, 2, "</s>", 4, 0, PIECE_CONTROL);
    for (int b = 0; b < 256; b++) {
        char byte_piece[8];
        snprintf(byte_piece, sizeof byte_piece, "<0x%02X>", b);
        set_piece(t, 3 + b, byte_piece, 6, 0, PIECE_BYTE);
    }
    for (int k = 0; k < n_merges; k++) {
        const TrainString *s = &tr.strings[merges[k]];
        set_piece(t, N_FIXED_PIECES + k, tr.string_text + s->text, s->len, (float)-k, PIECE_NORMAL);
    }
    for (int c = 0; c < tr.n_kept_chars; c++) {
        const TrainString *s = &tr.strings[kept_chars[c]];
        set_piece(t, N_FIXED_PIECES + n_merges + c, tr.string_text + s->text, s->len,
                  (float)-(n_merges + c), PIECE_NORMAL);
    }
    finish_loading(t, name);
    t->bos_id = 1;
    t->eos_id = 2;
    if (verbose)
        fprintf(stderr, "train: %d pieces: 3 special, 256 bytes, %d merges, %d characters; %.2f s\n",
                t->vocab_size, n_merges, tr.n_kept_chars, seconds_now() - start);

    /* The trainer's final segmentation, for tests: each word's ids, with a
     * character that has no piece as its bytes (as the encoder falls back). */
    if (trained) {
        trained->n_words = tr.n_words;
        trained->words = xcalloc((size_t)tr.n_words, sizeof(TrainedWord));
        for (int w = 0; w < tr.n_words; w++) {
            const Word *word = &tr.words[w];
            TrainedWord *out = &trained->words[w];
            out->len = word->len;
            out->text = xmalloc((size_t)word->len + 1);
            memcpy(out->text, tr.word_text + word->text, (size_t)word->len);
            out->text[word->len] = '\0';
            out->count = word->count;
            out->ids = xmalloc((size_t)word->len * sizeof(int));
            const int *symbol = tr.symbols + word->first_symbol;
            int pos = 0;
            for (int i = 0; i < word->n_symbols; i++) {
                if (symbol[i] >= 0) {
                    out->ids[out->n_ids++] = final_id(&tr, n_merges, symbol[i]);
                    pos += tr.strings[symbol[i]].len;
                    continue;
                }
                const unsigned char *c = (const unsigned char *)tr.word_text + word->text + pos;
                int char_len = utf8_length(c, (size_t)(word->len - pos));
                for (int b = 0; b < char_len; b++) out->ids[out->n_ids++] = t->byte_ids[c[b]];
                pos += char_len;
            }
        }
    }

    for (int i = 0; i < tr.n_strings; i++) free(tr.strings[i].words);
    free(tr.strings);
    free(tr.string_text);
    free(tr.string_table);
    free(tr.words);
    free(tr.word_text);
    free(tr.word_table);
    free(tr.symbols);
    free(tr.pairs);
    free(tr.queue);
    free(tr.touched);
    free(merges);
    free(kept_chars);
}

void trained_words_free(TrainedWords *trained) {
    for (int w = 0; w < trained->n_words; w++) {
        free(trained->words[w].text);
        free(trained->words[w].ids);
    }
    free(trained->words);
    memset(trained, 0, sizeof *trained);
}

void tokenizer_save_bin(const Tokenizer *t, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) fatal("cannot write %s", path);
    /* llama2.c writes BOS and EOS as "\n<s>\n" and "\n</s>\n" (section 4 of
     * docs/format.md), which is how tokenizer_load_bin recognises them. */
    uint32_t max_len = 6;
    for (int id = 0; id < t->vocab_size; id++)
        if ((uint32_t)t->piece_lengths[id] > max_len) max_len = (uint32_t)t->piece_lengths[id];
    int ok = fwrite(&max_len, 4, 1, f) == 1;
    for (int id = 0; id < t->vocab_size && ok; id++) {
        const char *text = t->pieces[id];
        uint32_t len = (uint32_t)t->piece_lengths[id];
        if (t->types[id] == PIECE_CONTROL && id == t->bos_id) text = "\n<s>\n", len = 5;
        else if (t->types[id] == PIECE_CONTROL && id == t->eos_id) text = "\n</s>\n", len = 6;
        ok = fwrite(&t->scores[id], 4, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 &&
             fwrite(text, 1, len, f) == len;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        fatal("cannot write %s (disk full?)", path);
    }
}

/* ------------------------------------------------------------------------
 * The command-line tool. */
#ifdef TOKENIZER_MAIN
#include <unistd.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: tokenizer encode|decode|train [options]\n"
            "  encode  read text on stdin; print one line of space-separated ids per input line\n"
            "  decode  read lines of space-separated ids on stdin; print the text of each line\n"
            "  train   learn a BPE vocabulary from a text file (one sentence per line) and\n"
            "          write it as a llama2.c tokenizer.bin (docs/tokenizer.md)\n"
            "options of encode and decode:\n"
            "  -z FILE   tokenizer: a llama2.c tokenizer.bin or a lamp model file (default tokenizer.bin)\n"
            "  --bos     encode: put the BOS id first\n"
            "  --eos     encode: put the EOS id last\n"
            "  -v        print lines, bytes, tokens, time and speed on stderr\n"
            "options of train (all but the last are required):\n"
            "  -i FILE                 the training text\n"
            "  -o FILE                 the tokenizer.bin to write\n"
            "  --vocab-size N          pieces in all: 3 special, 256 bytes, the characters, the merges\n"
            "  --character-coverage F  in (0,1]: the characters that make up this share of the text get\n"
            "                          pieces, the rarest others fall back to bytes [0.9995]\n"
            "  -h        this help\n");
}

/* `./tokenizer train`: read the text, train, write the tokenizer.bin. */
static int train_command(int argc, char **argv) {
    const char *input = NULL, *output = NULL;
    TrainOptions options = {0, 0.9995, 1};
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) { usage(stdout); return 0; }
        if (strcmp(flag, "-i") != 0 && strcmp(flag, "-o") != 0 && strcmp(flag, "--vocab-size") != 0 &&
            strcmp(flag, "--character-coverage") != 0)
            fatal("unknown option '%s' for train (-h for help)", flag);
        if (i + 1 >= argc) fatal("%s needs a value (-h for help)", flag);
        const char *value = argv[++i];
        char *end;
        if (strcmp(flag, "-i") == 0) input = value;
        else if (strcmp(flag, "-o") == 0) output = value;
        else if (strcmp(flag, "--vocab-size") == 0) {
            long n = strtol(value, &end, 10);
            if (end == value || *end != '\0' || n < 259 || n > MAX_TRAIN_VOCAB)
                fatal("--vocab-size '%s' is not a number of pieces from 259 to %d", value, MAX_TRAIN_VOCAB);
            options.vocab_size = (int)n;
        } else {
            double f = strtod(value, &end);
            if (end == value || *end != '\0' || !(f > 0 && f <= 1))
                fatal("--character-coverage '%s' is not a number in (0, 1]", value);
            options.character_coverage = f;
        }
    }
    if (!input) fatal("train needs the text to learn from: -i FILE (-h for help)");
    if (!output) fatal("train needs a file to write: -o FILE (-h for help)");
    if (options.vocab_size == 0) fatal("train needs --vocab-size N (-h for help)");
    /* Say now, not after training, if the output cannot be written: its
     * directory must be writable, and so must the file if it exists. */
    char *directory = xmalloc(strlen(output) + 2);
    strcpy(directory, output);
    char *slash = strrchr(directory, '/');
    if (!slash) strcpy(directory, ".");
    else slash[slash == directory] = '\0';          /* "/x" -> "/", "a/b/x" -> "a/b" */
    if (access(directory, W_OK) != 0 || (access(output, F_OK) == 0 && access(output, W_OK) != 0))
        fatal("cannot write %s", output);
    free(directory);
    double start = seconds_now();
    size_t size;
    char *text = read_whole_file(input, &size);
    Tokenizer t;
    tokenizer_train(&t, text, size, &options, input, NULL);
    free(text);
    tokenizer_save_bin(&t, output);
    fprintf(stderr, "train: wrote %s (%d pieces); %.2f s in all\n", output, t.vocab_size,
            seconds_now() - start);
    tokenizer_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) fatal("missing command: encode, decode or train (-h for help)");
    const char *command = argv[1];
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) { usage(stdout); return 0; }
    if (strcmp(command, "train") == 0) return train_command(argc, argv);
    if (strcmp(command, "encode") != 0 && strcmp(command, "decode") != 0)
        fatal("unknown command '%s' (expected encode, decode or train; -h for help)", command);
    const char *path = "tokenizer.bin";
    int add_bos = 0, add_eos = 0, verbose = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-z") == 0) {
            if (i + 1 >= argc) fatal("-z needs a file name");
            path = argv[++i];
        } else if (strcmp(argv[i], "--bos") == 0) add_bos = 1;
        else if (strcmp(argv[i], "--eos") == 0) add_eos = 1;
        else if (strcmp(argv[i], "-v") == 0) verbose = 1;
        else if (strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
        else fatal("unknown option '%s' (-h for help)", argv[i]);
    }
    Tokenizer t;
    tokenizer_load_file(&t, path);

    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long n_lines = 0, n_tokens_total = 0;
    size_t n_bytes = 0;
    double start = seconds_now();
    while ((got = getline(&line, &cap, stdin)) != -1) {
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n') len--;
        n_lines++;
        n_bytes += len;
        if (command[0] == 'e') {
            int n;
            int *ids = tokenizer_encode(&t, line, len, add_bos, add_eos, &n);
            for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
            n_tokens_total += n;
            free(ids);
        } else {
            /* Parse the whole line first, so a bad id stops the program
             * before any of the line is printed. */
            line[len] = '\0';
            int *ids = xmalloc((len / 2 + 1) * sizeof(int)); /* ids are >= 2 chars apart */
            int n = 0;
            char *cursor = line, *end;
            for (;;) {
                while (*cursor == ' ' || *cursor == '\t' || *cursor == '\r') cursor++;
                if (*cursor == '\0') break;
                long id = strtol(cursor, &end, 10);
                if (end == cursor || (*end && *end != ' ' && *end != '\t' && *end != '\r'))
                    fatal("line %ld: '%s' is not a list of token ids", n_lines, line);
                if (id < 0 || id >= t.vocab_size)
                    fatal("line %ld: token id %ld is outside the vocabulary (0..%d)", n_lines, id,
                          t.vocab_size - 1);
                ids[n++] = (int)id;
                cursor = end;
            }
            for (int i = 0; i < n; i++) {
                size_t piece_len;
                const char *piece = tokenizer_decode(&t, i ? ids[i - 1] : -1, ids[i], &piece_len);
                fwrite(piece, 1, piece_len, stdout);
            }
            n_tokens_total += n;
            free(ids);
            putchar('\n');
        }
    }
    double elapsed = seconds_now() - start;
    if (verbose)
        fprintf(stderr, "%s: %ld lines, %zu bytes, %ld tokens, %.3f s, %.2f MB/s, %.3f bytes/token\n",
                command, n_lines, n_bytes, n_tokens_total, elapsed, (double)n_bytes / 1e6 / elapsed,
                n_tokens_total ? (double)n_bytes / (double)n_tokens_total : 0.0);
    free(line);
    tokenizer_free(&t);
    return 0;
}
#endif
