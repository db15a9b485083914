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
 * At the bottom, behind TOKENIZER_MAIN, is the `./tokenizer` command-line
 * tool: `./tokenizer encode -z FILE` and `./tokenizer decode -z FILE`. */
#define _POSIX_C_SOURCE 200809L
#include "tokenizer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------------
 * A hash table from piece text to id, for the pieces that merges may form.
 * Open addressing with linear probing; the table is at least twice the
 * vocabulary so probes stay short. FNV-1a is a simple, decent string hash. */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;           /* FNV offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;                      /* FNV prime */
    }
    return h;
}

/* Id of the mergeable piece whose text is s[0..len), or -1. */
static int lookup_piece(const Tokenizer *t, const char *s, size_t len) {
    size_t mask = t->table_size - 1;
    for (size_t slot = hash_bytes(s, len) & mask;; slot = (slot + 1) & mask) {
        int id = t->table[slot];
        if (id < 0) return -1;
        if ((size_t)t->piece_lengths[id] == len && memcmp(t->pieces[id], s, len) == 0)
            return id;
    }
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
    t->table = xmalloc(size * sizeof(int));
    for (size_t i = 0; i < size; i++) t->table[i] = -1;

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
        while (t->table[slot] >= 0) {
            int other = t->table[slot];
            if (t->piece_lengths[other] == t->piece_lengths[id] &&
                memcmp(t->pieces[other], t->pieces[id], (size_t)t->piece_lengths[id]) == 0)
                break;  /* a duplicate piece: the first id wins, as in SentencePiece */
            slot = (slot + 1) & (size - 1);
        }
        if (t->table[slot] < 0) t->table[slot] = id;
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
    if (r.pos != size) fatal("%s: %zu unexpected bytes after the tokenizer's pieces", path, size - r.pos);
    finish_loading(t, path);
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
    uint32_t flags = t->add_dummy_prefix ? 1u : 0u;
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
    if (written != expected) fatal("cannot write the tokenizer (disk full?)");
    return written;
}

void tokenizer_free(Tokenizer *t) {
    for (int i = 0; i < t->vocab_size; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->piece_lengths);
    free(t->scores);
    free(t->types);
    free(t->table);
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
static int utf8_length(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;    /* allowed range of the 2nd byte */
    if (c < 0x80) return 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;           /* overlong */
        if (c == 0xED) hi = 0x9F;           /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;           /* overlong */
        if (c == 0xF4) hi = 0x8F;           /* past U+10FFFF */
    } else return 0;                        /* 80..C1, F5..FF never start one */
    if ((size_t)len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
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

int *tokenizer_encode(const Tokenizer *t, const char *raw_text, size_t raw_len,
                      int add_bos, int add_eos, int *n_tokens) {
    const unsigned char *raw = (const unsigned char *)raw_text;
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
        int len = utf8_length(raw + i, raw_len - i);
        Symbol s = {(int)text_len, 0, -1, -1};
        if (len == 0) {                     /* malformed byte -> U+FFFD */
            memcpy(text + text_len, "\xEF\xBF\xBD", 3);
            s.len = 3;
            i += 1;
        } else if (len == 3 && memcmp(raw + i, "\xE2\x96\x81", 3) == 0) {
            text[text_len] = ' ';           /* a literal '▁' means a space in SentencePiece */
            s.len = 1;
            i += 3;
        } else {
            memcpy(text + text_len, raw + i, (size_t)len);
            s.len = len;
            i += (size_t)len;
        }
        text_len += (size_t)s.len;
        symbols[n_symbols++] = s;
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
    for (int i = (n_symbols > 0 ? 0 : -1); i >= 0; i = symbols[i].next) {
        int id = lookup_piece(t, text + symbols[i].start, (size_t)symbols[i].len);
        if (id >= 0) {
            ids[n++] = id;
            continue;
        }
        for (int b = 0; b < symbols[i].len; b++) {
            int byte_id = t->byte_ids[(unsigned char)text[symbols[i].start + b]];
            ids[n++] = byte_id >= 0 ? byte_id : (t->unk_id >= 0 ? t->unk_id : 0);
        }
    }
    if (add_eos && t->eos_id >= 0) ids[n++] = t->eos_id;
    free(text);
    free(symbols);
    *n_tokens = n;
    return ids;
}

/* ------------------------------------------------------------------------
 * Decoding. */

const char *tokenizer_decode(const Tokenizer *t, int prev_id, int id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->vocab_size) return "";
    const char *piece = t->pieces[id];
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
 * The command-line tool. */
#ifdef TOKENIZER_MAIN
#include <time.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: tokenizer encode|decode [options]\n"
            "  encode  read text on stdin; print one line of space-separated ids per input line\n"
            "  decode  read lines of space-separated ids on stdin; print the text of each line\n"
            "options:\n"
            "  -z FILE   tokenizer: a llama2.c tokenizer.bin or a lamp model file (default tokenizer.bin)\n"
            "  --bos     encode: put the BOS id first\n"
            "  --eos     encode: put the EOS id last\n"
            "  -v        print lines, bytes, tokens, time and speed on stderr\n"
            "  -h        this help\n");
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) fatal("missing command: encode or decode (-h for help)");
    const char *command = argv[1];
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) { usage(stdout); return 0; }
    if (strcmp(command, "encode") != 0 && strcmp(command, "decode") != 0)
        fatal("unknown command '%s' (expected encode or decode; -h for help)", command);
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
