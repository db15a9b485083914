/* kit.h — what the checks of the course kit share (docs/exercises.md).
 *
 * A check compares a student's numbers with a golden made by PyTorch,
 * transformers or sentencepiece (tests/golden/gen_exercise_kit.py) and, when
 * they differ, says where first (row, index, layer, position), what was
 * expected and what came out, and what that pattern usually means. The
 * grader (exercises/grade.sh, `make grade`) runs the suites with
 * CK_VERBOSITY=verbose and reads one line per check (run_suite in
 * tests/testutil.h).
 *
 * Include it after run.c (or train.c) and tests/goldens.h. */
#ifndef LAMP_KIT_H
#define LAMP_KIT_H

#include <math.h>
#include <stdarg.h>

#define KIT_DIR "tests/golden/exercises/kit/"
/* logits against transformers: float32 against float32, other summation orders */
#define KIT_LOGIT_TOLERANCE 1e-4

/* ---- units.txt: one named array a line, "name count v0 v1 ..." ---------- */

typedef struct {
    char *name;
    int n;
    double *v;
} UnitArray;

static inline const UnitArray *kit_units(int *count) {
    static UnitArray *arrays = NULL;
    static int n_arrays = 0;
    if (!arrays) {
        size_t size;
        char *text = slurp_golden(KIT_DIR "units.txt", &size);
        int cap = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            char *end;
            char *space = strchr(line, ' ');
            ck_assert_ptr_nonnull(space);
            *space = '\0';
            int n = (int)strtol(space + 1, &end, 10);
            if (n_arrays == cap) {
                cap = cap ? 2 * cap : 64;
                arrays = realloc(arrays, sizeof(UnitArray) * (size_t)cap);
                ck_assert_ptr_nonnull(arrays);
            }
            UnitArray *a = &arrays[n_arrays++];
            a->name = line;
            a->n = n;
            a->v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
            ck_assert_ptr_nonnull(a->v);
            for (int i = 0; i < n; i++) a->v[i] = strtod(end, &end);
        }
    }
    *count = n_arrays;
    return arrays;
}

/* The array `name` of units.txt (the test fails if it is missing); its
 * length in *n. */
static inline const double *unit(const char *name, int *n) {
    int count;
    const UnitArray *a = kit_units(&count);
    for (int i = 0; i < count; i++)
        if (strcmp(a[i].name, name) == 0) {
            if (n) *n = a[i].n;
            return a[i].v;
        }
    ck_abort_msg("missing golden array '%s' in " KIT_DIR "units.txt (tests/golden/gen_exercise_kit.py)", name);
    return NULL;
}

/* A golden array as float32, in fresh memory. */
static inline float *unit_f32(const char *name, int *n) {
    int count;
    const double *v = unit(name, &count);
    float *f = malloc(sizeof(float) * (size_t)count);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < count; i++) f[i] = (float)v[i];
    if (n) *n = count;
    return f;
}

/* ---- comparing, and saying where ---------------------------------------- */

/* What a check fills in before it gives up: the first index where got and
 * want differ by more than atol + rtol |want| (a NaN always differs; equal
 * infinities agree), and how many differ. */
typedef struct {
    int first;          /* -1: all agree */
    int n_bad;
    double want, got;
} Mismatch;

static inline int kit_close(double got, double want, double atol, double rtol) {
    if (isinf(want) || isinf(got)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static inline Mismatch kit_compare(const float *got, const double *want, int n, double atol, double rtol) {
    Mismatch m = {-1, 0, 0, 0};
    for (int i = 0; i < n; i++)
        if (!kit_close(got[i], want[i], atol, rtol)) {
            if (m.first < 0) { m.first = i; m.want = want[i]; m.got = got[i]; }
            m.n_bad++;
        }
    return m;
}

/* A value the function under test must overwrite: a NaN with a payload
 * that no arithmetic produces, so "never written" can be told from "wrong". */
static inline float kit_unwritten(void) {
    uint32_t bits = 0x7fc0beefu;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
static inline int kit_is_unwritten(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return bits == 0x7fc0beefu;
}
static inline void kit_fill_unwritten(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = kit_unwritten();
}

/* "got" for a message: the number, or why it is not one. */
static inline const char *kit_got(float got, char *buf, size_t size) {
    if (kit_is_unwritten(got)) snprintf(buf, size, "nothing (never written)");
    else snprintf(buf, size, "%.6g", (double)got);
    return buf;
}

/* The hint for a value that is NaN or infinite where a number was due. */
static inline const char *kit_nan_hint(float got) {
    if (kit_is_unwritten(got)) return "the output was never written: is the body still the handout's stub?";
    if (isnan(got)) return "NaN: 0/0 or inf - inf somewhere, typically exp() of a large number "
                           "overflowing to inf and then divided by inf (subtract the max first)";
    if (isinf(got)) return "inf: an overflow (exp of a large number) or a division by zero";
    return NULL;
}

/* Fail with a message assembled like printf (Check's own message is one
 * line; the grader prints it under the check). */
static inline void kit_fail(const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ck_abort_msg("%s", buf);
}

/* ---- an extend exercise's model must load first --------------------------
 * run.c's loader stops the process on a file it does not accept (fatal()),
 * which Check can only report as "Early exit". So a check of a new kind of
 * model first asks ./run to load it, and fails with ./run's own message and
 * the step of the exercise it points to. */
static inline void kit_expect_loads(const char *model_path, const char *step) {
    char *const argv[] = {(char *)program("run"), (char *)model_path, "-n", "1", "-t", "0", "--threads", "1", NULL};
    Proc p = run_program(NULL, argv);
    if (!(p.exited && p.code == 0)) {
        char *newline = strchr(p.err, '\n');
        if (newline) *newline = '\0';
        kit_fail("./run %s fails (exit %d): \"%s\". %s", model_path, p.code, p.err, step);
    }
    free_proc(&p);
}

/* ---- a model's logits against a golden, on one path, saying where --------
 * The fast path takes the whole sequence as chunks of CHUNK positions and,
 * with `one_at_a_time`, again one position per forward_chunk() call (as
 * ./run generates). Fails naming the first wrong position and logit and
 * every wrong position; `hint` says what that pattern usually means. */
static inline void kit_logits_check(int path, int one_at_a_time, const char *model, const char *golden,
                                    const char *hint) {
    one_thread();
    Logits g = read_logits(golden);
    Transformer t;
    build_transformer(&t, model);
    if (path == PATH_FAST) malloc_fast_state(&t);
    else malloc_run_state(&t);
    int wrong[256] = {0}, first_pos = -1, first_id = -1, n = g.n_positions;
    float want_first = 0, got_first = 0;
    ck_assert_int_le(n, 256);
    for (int pass = 0; pass < (path == PATH_FAST && one_at_a_time ? 2 : 1); pass++) {
        const float *chunk = NULL;
        for (int pos = 0; pos < n; pos++) {
            const float *logits;
            if (path == PATH_REFERENCE) logits = forward(&t, g.ids[pos], pos);
            else if (pass == 1) logits = forward_chunk(&t, g.ids + pos, 1, pos, LOGITS_LAST);
            else {
                if (pos % CHUNK == 0) chunk = forward_chunk(&t, g.ids + pos, n - pos < CHUNK ? n - pos : CHUNK, pos,
                                                            LOGITS_ALL);
                logits = chunk + (size_t)(pos % CHUNK) * g.vocab_size;
            }
            for (int i = 0; i < g.vocab_size; i++) {
                float want = g.logits[(size_t)pos * g.vocab_size + i];
                if (kit_close(logits[i], want, KIT_LOGIT_TOLERANCE, 0)) continue;
                if (first_pos < 0 || (pos < first_pos && !wrong[pos])) {
                    first_pos = pos; first_id = i; want_first = want; got_first = logits[i];
                }
                wrong[pos] = 1;
            }
        }
    }
    free_transformer(&t);
    free(g.raw);
    if (first_pos < 0) {
        printf("%s: %s path, %d positions match %s within %g\n", model, path_name(path), n, golden,
               KIT_LOGIT_TOLERANCE);
        return;
    }
    char positions[256] = "", got[64];
    size_t used = 0;
    for (int p = 0; p < n && used + 12 < sizeof positions; p++) {
        if (!wrong[p] || (p > 0 && wrong[p - 1])) continue;
        int q = p;
        while (q + 1 < n && wrong[q + 1]) q++;
        used += (size_t)snprintf(positions + used, sizeof positions - used, "%s%d", used ? "," : "", p);
        if (q > p) used += (size_t)snprintf(positions + used, sizeof positions - used, "-%d", q);
    }
    kit_fail("%s, %s path%s: first wrong at position %d, logit %d: expected %.6g, got %s; positions wrong: %s "
             "(of 0-%d). %s", model, path_name(path),
             path == PATH_FAST ? (one_at_a_time ? " (a chunk of all, then one position at a time)" : "") : "",
             first_pos, first_id, (double)want_first, kit_got(got_first, got, sizeof got), positions, n - 1, hint);
}

/* ---- the model, block by block ------------------------------------------
 * tests/golden/exercises/kit/gqa-untied.L<n>.logits are transformers' logits
 * of tests/golden/forward/gqa-untied.lamp cut to its first n blocks (n =
 * 0..3), for 16 positions. run.c runs the same cut model when config.n_layers
 * is set to n after loading (the weights of the later blocks are just not
 * read). The smallest n that disagrees names the first wrong block; the
 * positions that disagree tell what kind of mistake it is. */

#define KIT_MODEL "tests/golden/forward/gqa-untied.lamp"
#define KIT_MODEL_LAYERS 3

typedef struct {
    int layers;          /* the smallest n whose logits are off; -1 if none */
    int first_pos, first_id;
    float want, got;
    int wrong[64];       /* positions of that n: 1 if off */
    int n_positions;
} ModelCheck;

static inline ModelCheck kit_model_run(int path) {
    ModelCheck r = {-1, -1, -1, 0, 0, {0}, 0};
    for (int n = 0; n <= KIT_MODEL_LAYERS && r.layers < 0; n++) {
        char golden[256];
        snprintf(golden, sizeof golden, KIT_DIR "gqa-untied.L%d.logits", n);
        Logits g = read_logits(golden);
        Transformer t;
        build_transformer(&t, KIT_MODEL);
        if (path == PATH_FAST) malloc_fast_state(&t);
        else malloc_run_state(&t);
        t.config.n_layers = n;
        const float *all = NULL;
        if (path == PATH_FAST) all = forward_chunk(&t, g.ids, g.n_positions, 0, LOGITS_ALL);
        r.n_positions = g.n_positions;
        for (int pos = 0; pos < g.n_positions; pos++) {
            const float *logits = path == PATH_FAST ? all + (size_t)pos * g.vocab_size : forward(&t, g.ids[pos], pos);
            const float *want = g.logits + (size_t)pos * g.vocab_size;
            for (int i = 0; i < g.vocab_size; i++)
                if (!kit_close(logits[i], want[i], KIT_LOGIT_TOLERANCE, 0)) {
                    if (!r.wrong[pos] && r.first_pos < 0) {
                        r.first_pos = pos; r.first_id = i; r.want = want[i]; r.got = logits[i];
                    }
                    r.wrong[pos] = 1;
                    r.layers = n;
                }
        }
        t.config.n_layers = KIT_MODEL_LAYERS;
        free_transformer(&t);
        free(g.raw);
    }
    return r;
}

/* What the pattern of wrong positions usually means. */
static inline const char *kit_model_pattern(const ModelCheck *r) {
    int later = 0;
    for (int p = 1; p < r->n_positions; p++) later += r->wrong[p];
    if (isnan(r->got) || isinf(r->got))
        return "the logits are NaN or infinite: an overflow (exp of a large number without subtracting the max) "
               "or a division by zero in a kernel";
    if (r->layers == 0)
        return "wrong even with no block at all: only the embedding, the final RMSNorm and the classifier run, "
               "so look at rmsnorm()";
    if (!r->wrong[0])
        return "position 0 is right and later ones are wrong: at position 0 RoPE rotates by angle 0, the cache "
               "holds one position and attention's softmax is over one score, so the mistake is in what depends "
               "on the position: RoPE's angle (pos x freq), the KV-cache write, or the range of cached positions "
               "attention reads (the causal mask)";
    if (later == 0)
        return "only position 0 is wrong: something that happens before any position is cached";
    return "position 0 is wrong too, so it is not (only) about positions: a kernel every position uses in the "
           "block (RMSNorm, SwiGLU, the attention output, which kv head a query head reads), or a write to the "
           "wrong place";
}

/* The whole model on the given path, block by block; fails with where and
 * why. `exercise_hint` adds what the exercise itself suggests. */
static inline void kit_model_check(int path, const char *exercise_hint) {
    one_thread();
    ModelCheck r = kit_model_run(path);
    if (r.layers < 0) {
        printf("%s path: logits of the model cut to 0..%d blocks match transformers within %g\n", path_name(path),
               KIT_MODEL_LAYERS, KIT_LOGIT_TOLERANCE);
        return;
    }
    char got[64], positions[200] = "";
    size_t used = 0;
    for (int p = 0; p < r.n_positions && used + 8 < sizeof positions; p++)
        if (r.wrong[p]) used += (size_t)snprintf(positions + used, sizeof positions - used, "%s%d", used ? "," : "", p);
    char right[64] = "even with no block it is wrong";
    if (r.layers > 0) snprintf(right, sizeof right, "with %d it is right", r.layers - 1);
    kit_fail("%s path, %s: cut to its first %d block(s) (%s), first wrong at position %d, logit %d: expected "
             "%.6g, got %s; positions wrong: %s. Pattern: %s. %s", path_name(path), KIT_MODEL, r.layers, right,
             r.first_pos, r.first_id, (double)r.want, kit_got(r.got, got, sizeof got), positions,
             kit_model_pattern(&r), exercise_hint);
}

#endif
