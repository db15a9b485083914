/* tokenizer.h — lamp's BPE tokenizers: SentencePiece's (Llama 2, llama2.c)
 * and the byte-level one of GPT-2, Llama 3 and SmolLM2.
 *
 * A tokenizer turns text into token ids (encode) and ids back into text
 * (decode). The implementation, with the algorithm explained, is in
 * tokenizer.c; the file formats it reads are in docs/format.md. */
#ifndef LAMP_TOKENIZER_H
#define LAMP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* SentencePiece's piece types (the numbers match its ModelProto). */
enum {
    PIECE_NORMAL = 1,       /* ordinary text piece; takes part in merges   */
    PIECE_UNKNOWN = 2,      /* <unk>                                        */
    PIECE_CONTROL = 3,      /* <s>, </s>: never produced from text          */
    PIECE_USER_DEFINED = 4, /* treated like NORMAL here                     */
    PIECE_UNUSED = 5,       /* never produced                               */
    PIECE_BYTE = 6,         /* <0xAB>: byte fallback                        */
};

/* The kinds of tokenizer (bits 8..15 of a lamp file's tokenizer_flags,
 * docs/format.md 1.2). SentencePiece BPE merges the pair whose result has
 * the best score and falls back to byte pieces; byte-level BPE first splits
 * the text into words with a pattern, then merges the pairs of its merge
 * list in rank order, starting from one piece per byte. The byte-level
 * kinds differ only in how they split. */
enum {
    TOKENIZER_SENTENCEPIECE = 0,
    TOKENIZER_GPT2 = 1,     /* byte-level, GPT-2's split pattern                      */
    TOKENIZER_LLAMA3 = 2,   /* byte-level, Llama 3's split pattern                    */
    TOKENIZER_SMOLLM = 3,   /* byte-level, every digit alone, then GPT-2's pattern    */
    N_TOKENIZER_KINDS
};

typedef struct {
    int kind;               /* TOKENIZER_*                                            */
    int vocab_size;
    char **pieces;          /* (vocab_size) text of each piece, NUL-terminated, '▁' as ' ' */
    int *piece_lengths;     /* (vocab_size) bytes in each piece                */
    float *scores;          /* (vocab_size) merge priority, higher first       */
    unsigned char *types;   /* (vocab_size) PIECE_* of each piece              */
    int max_piece_length;
    int add_dummy_prefix;   /* prepend a space before encoding (SentencePiece) */
    int unk_id, bos_id, eos_id;  /* -1 when the vocabulary has none            */
    int byte_ids[256];      /* id of the piece <0xAB> for byte AB, or -1       */
    /* hash table: piece text -> id, for mergeable pieces. The ids of slot s
     * are bucket_ids[bucket_start[s] .. bucket_start[s + 1]), sorted by text. */
    int *bucket_start;      /* (table_size + 1)                                */
    int *bucket_ids;        /* (mergeable pieces)                              */
    size_t table_size;      /* a power of two                                  */
    unsigned char byte_text[256][2]; /* one-byte strings that decode returns */
    /* Byte-level BPE only. Merge r (its rank: lower merges first) joins the
     * pieces merge_left[r] and merge_right[r] into merge_result[r]; a hash
     * table finds the rank of a pair. Added tokens (control and
     * user-defined pieces, e.g. <|im_start|>) are cut out of the text
     * before it is split, longest first. */
    int n_merges;
    int *merge_left, *merge_right, *merge_result;  /* (n_merges)                    */
    int *merge_table;       /* (merge_table_size) ranks, -1 = empty slot          */
    size_t merge_table_size;/* a power of two                                     */
    int n_added;
    int *added_ids;         /* (n_added) ids of the added tokens, longest first   */
    unsigned char starts_added[256]; /* 1 if some added token starts with this byte */
} Tokenizer;

/* Loading. Each function either fills `t` or calls fatal() with a one-line
 * message naming the file and the problem.
 *   tokenizer_load_bin: a llama2.c tokenizer.bin. vocab_size > 0 reads exactly
 *     that many pieces and requires the file to end there (a tokenizer that
 *     does not belong to the model is refused); vocab_size <= 0 reads to EOF.
 *   tokenizer_load_lamp_section: the tokenizer section of a lamp model file
 *     (docs/format.md, 1.2), already in memory.
 *   tokenizer_load_file: either a tokenizer.bin or a lamp model, by magic. */
void tokenizer_load_bin(Tokenizer *t, const char *path, int vocab_size);
void tokenizer_load_lamp_section(Tokenizer *t, const unsigned char *data, size_t size,
                                 const char *path);
void tokenizer_load_file(Tokenizer *t, const char *path);
void tokenizer_free(Tokenizer *t);

/* Write `t` as the tokenizer section of a lamp model file (docs/format.md,
 * 1.2) to `out`; returns the number of bytes written (the header's
 * tokenizer_size). Calls fatal() if writing fails. */
size_t tokenizer_write_lamp_section(const Tokenizer *t, FILE *out);

/* Encode `len` bytes of text (any bytes: malformed UTF-8 is handled as
 * SentencePiece does, each bad byte becoming U+FFFD; byte-level tokenizers
 * replace each maximal bad sequence by one U+FFFD, as Python's
 * bytes.decode(errors="replace") does before Hugging Face tokenizers sees it). Returns a malloc'd
 * array of ids that the caller frees, and its length in *n_tokens.
 * add_bos/add_eos put bos_id/eos_id around the ids. */
int *tokenizer_encode(const Tokenizer *t, const char *text, size_t len,
                      int add_bos, int add_eos, int *n_tokens);

/* The bytes that token `id` stands for when it follows `prev_id` (use -1 for
 * the first token of a text). Byte pieces give their single byte, control and
 * unused pieces give nothing (""), the unknown piece gives " ⁇ " as
 * SentencePiece does, and the first piece of a text — or the
 * first after BOS — loses the leading space that the dummy prefix added.
 * Returns a pointer into the tokenizer (valid until tokenizer_free) and the
 * length in *len (byte pieces may be the byte 0x00). */
const char *tokenizer_decode(const Tokenizer *t, int prev_id, int id, size_t *len);

/* Training: learn a SentencePiece-style BPE vocabulary with byte fallback
 * from text, one sentence per line (the algorithm is explained in
 * tokenizer.c, "Training"; usage in docs/tokenizer.md). */
typedef struct {
    int vocab_size;             /* pieces in all: 3 special + 256 bytes + characters + merges */
    double character_coverage;  /* in (0,1]: the most frequent characters that make up this
                                   share of the text get pieces; the rest fall back to bytes
                                   (SentencePiece's default is 0.9995) */
    int verbose;                /* print progress and timing on stderr */
} TrainOptions;

/* The trainer's final segmentation of one distinct word of the text. */
typedef struct {
    char *text;                 /* the normalised word: a space (for '▁') and what follows */
    int len;                    /* bytes of text */
    int64_t count;              /* how often it occurs in the text */
    int *ids;                   /* its pieces' ids; a character without a piece as its bytes */
    int n_ids;
} TrainedWord;
typedef struct {
    TrainedWord *words;         /* in order of first occurrence */
    int n_words;
} TrainedWords;

/* Learn a vocabulary of options->vocab_size pieces from len bytes of text and
 * fill `t` with it (ids 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then
 * the merged pieces, then the characters). Same text and options, same
 * vocabulary. `name` names the text in messages. If `trained` is not NULL it
 * receives the segmentation of every distinct word, which encoding the text
 * with `t` reproduces (free it with trained_words_free). Calls fatal() when
 * the text is empty, or the vocabulary size is too small for its characters
 * or larger than its pairs allow. */
void tokenizer_train(Tokenizer *t, const char *text, size_t len, const TrainOptions *options,
                     const char *name, TrainedWords *trained);
void trained_words_free(TrainedWords *trained);

/* Write `t` as a llama2.c tokenizer.bin (docs/format.md, 4) to path; BOS and
 * EOS are written as llama2.c does ("\n<s>\n", "\n</s>\n"). Calls fatal()
 * (removing the partial file) if writing fails. */
void tokenizer_save_bin(const Tokenizer *t, const char *path);

/* Print decoded bytes to a terminal without ever splitting a UTF-8 character:
 * bytes wait in `pending` until their code point is complete; a byte that
 * cannot start or continue a valid sequence is printed as U+FFFD, and ASCII
 * control characters other than \n, \t and \r are dropped so a model cannot
 * send escape sequences to the terminal. */
typedef struct {
    unsigned char pending[4];
    int n_pending;
} Utf8Printer;
void utf8_print(Utf8Printer *p, const char *bytes, size_t len, FILE *out);
void utf8_flush(Utf8Printer *p, FILE *out);

#endif
