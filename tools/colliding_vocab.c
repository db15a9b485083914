/* colliding_vocab.c — a vocabulary built to collide in a hash table.
 *
 *   cc -O2 -o build/colliding_vocab tools/colliding_vocab.c
 *   build/colliding_vocab N OUT.bin     N pieces, a llama2.c tokenizer.bin
 *
 * Every piece's 64-bit FNV-1a hash (tokenizer.c's hash_bytes) has the same
 * low 17 bits, so a table of up to 2^17 slots indexed by hash & (size - 1)
 * puts them all in one slot. tokenizer.c once probed linearly from that
 * slot, so loading N such pieces took N^2 / 2 comparisons (65,536 pieces:
 * 5.9 s). Now the pieces of one slot are kept sorted and found by binary
 * search; tests/test_tokenizer.c loads this vocabulary and checks that, and
 * docs/tokenizer.md gives the load times beside the real Llama 2 file.
 *
 * How the collisions are made. FNV-1a is h = (h ^ byte) * P for each byte,
 * mod 2^64, and the low k bits of a product depend only on the low k bits
 * of its factors. So the low k bits of the hash can be steered with the
 * last two bytes: with u = target * P^-1 (mod 2^k), the last step needs
 * (y ^ b2) = u, where y is the hash before the last byte. b2 sets y's low
 * 8 bits freely; y's bits 8..k-1 must already match u's. Each piece is a
 * distinct prefix ("c" and a counter), then the byte b1 among 256 that
 * makes them match (about 40% of prefixes have one for k = 17), then b2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define COLLIDE_BITS 17   /* tables up to 2^17 slots: vocabularies up to 65,536 */

static uint64_t fnv1a(const unsigned char *s, size_t len) {
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

/* The next colliding piece after prefix number *counter: writes it to
 * piece (room for 16 bytes) and returns its length. */
static int next_colliding_piece(unsigned char *piece, uint64_t *counter) {
    const uint64_t mask = (1ULL << COLLIDE_BITS) - 1, target = 0;
    uint64_t inverse = FNV_PRIME;   /* P^-1 mod 2^64 by Newton's iteration (P is odd) */
    for (int i = 0; i < 6; i++) inverse *= 2 - FNV_PRIME * inverse;
    uint64_t u = (target * inverse) & mask;
    for (;;) {
        int len = snprintf((char *)piece, 16, "c%llu", (unsigned long long)(*counter)++);
        uint64_t h = fnv1a(piece, (size_t)len);
        for (int b1 = 0; b1 < 256; b1++) {
            uint64_t y = ((h ^ (uint64_t)b1) * FNV_PRIME) & mask;
            if (y >> 8 != u >> 8) continue;
            piece[len] = (unsigned char)b1;
            piece[len + 1] = (unsigned char)((y ^ u) & 0xff);
            return len + 2;
        }
    }
}

/* Write n colliding pieces as a llama2.c tokenizer.bin; 0 on success. */
static int write_colliding_vocab(const char *path, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t max_len = 16;
    int ok = fwrite(&max_len, 4, 1, f) == 1;
    uint64_t counter = 0;
    for (int i = 0; i < n && ok; i++) {
        unsigned char piece[16];
        uint32_t len = (uint32_t)next_colliding_piece(piece, &counter);
        float score = -(float)i;
        ok = fwrite(&score, 4, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 && fwrite(piece, 1, len, f) == len;
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

#ifndef COLLIDING_VOCAB_NO_MAIN
int main(int argc, char **argv) {
    int n = argc == 3 ? atoi(argv[1]) : 0;
    if (n < 1 || n > (1 << (COLLIDE_BITS - 1))) {
        fprintf(stderr, "usage: colliding_vocab N OUT.bin   (N from 1 to %d)\n", 1 << (COLLIDE_BITS - 1));
        return 1;
    }
    if (write_colliding_vocab(argv[2], n) != 0) {
        fprintf(stderr, "colliding_vocab: cannot write %s\n", argv[2]);
        return 1;
    }
    return 0;
}
#endif
