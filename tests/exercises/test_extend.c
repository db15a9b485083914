/* test_extend.c — the checks of three extend exercises (docs/exercises.md):
 * rope-scaling, sliding-window and repetition-penalty. One Check test case
 * per exercise, named as the exercise; `make grade` scores each check.
 *
 * The goldens (tests/golden/gen_exercise_extend.py) are transformers' own
 * implementations of each feature run on tests/golden/forward/gqa-untied's
 * weights: LlamaForCausalLM with linear RoPE scaling, MistralForCausalLM
 * (Llama plus a sliding window), and generate() with a repetition penalty.
 * The two model features are switched on by new lamp header fields, in bytes
 * that every lamp file has kept zero so far; a run.c that ignores them runs
 * the plain model, so the checks say where its numbers part from the
 * golden's. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"
#include "tests/goldens.h"
#include "tests/exercises/kit.h"

#define GOLDEN "tests/golden/exercises/"
#define PLAIN_MODEL "tests/golden/forward/gqa-untied.lamp"
#define PLAIN_LOGITS "tests/golden/forward/gqa-untied.logits"

/* ---- rope-scaling ----------------------------------------------------------- */

#define SCALED GOLDEN "rope-scaling/scaled.lamp", GOLDEN "rope-scaling/scaled.logits"
#define SCALE_HINT                                                                                             \
    "Position 0 has angle 0 with or without scaling, so if only positions 1+ are wrong the angles are: with "  \
    "rope_scale s (float32 at header byte 84; 0 means 1) position p rotates by (p / s) * freq_i, the angles "  \
    "of p / s (transformers' rope_type \"linear\")"

START_TEST(test_rope_scaled_reference) {
    kit_logits_check(PATH_REFERENCE, 0, SCALED, SCALE_HINT);
    kit_logits_check(PATH_REFERENCE, 0, PLAIN_MODEL, PLAIN_LOGITS,
                     "A model without rope_scale (byte 84 zero) must run as before.");
}
END_TEST

START_TEST(test_rope_scaled_fast_path) {
    kit_logits_check(PATH_FAST, 1, SCALED, SCALE_HINT " (Part II's RoPE tables are made in malloc_fast_state)");
    kit_logits_check(PATH_FAST, 0, PLAIN_MODEL, PLAIN_LOGITS,
                     "A model without rope_scale (byte 84 zero) must run as before.");
}
END_TEST

/* ---- sliding-window ------------------------------------------------------------ */

#define WINDOW GOLDEN "sliding-window/window.lamp", GOLDEN "sliding-window/window.logits"
#define WINDOW_HINT                                                                                            \
    "With sliding_window W (int32 at header byte 88; 0 = none) = 8, a query at position p attends to keys "    \
    "max(0, p - W + 1) .. p only; positions 0-7 cannot tell a window from none, so if only 8+ are wrong the "  \
    "window is not applied (or applied off by one)"

START_TEST(test_window_reference) {
    kit_logits_check(PATH_REFERENCE, 0, WINDOW, WINDOW_HINT);
    kit_logits_check(PATH_REFERENCE, 0, PLAIN_MODEL, PLAIN_LOGITS,
                     "A model without a window (byte 88 zero) must attend to every earlier position, as before.");
}
END_TEST

START_TEST(test_window_fast_path) {
    kit_logits_check(PATH_FAST, 1, WINDOW, WINDOW_HINT ". On the fast path both attention_chunk() (the tiles "
                     "of a chunk) and attend_one() (the rows left over, and generating) need it");
    kit_logits_check(PATH_FAST, 1, PLAIN_MODEL, PLAIN_LOGITS,
                     "A model without a window (byte 88 zero) must attend to every earlier position, as before.");
}
END_TEST

/* ---- repetition-penalty ----------------------------------------------------------
 * ./run's greedy story from BOS alone (-i "", -t 0) against transformers'
 * generate() with the same repetition_penalty. ./run prints the generated
 * ids with -v. */

/* The golden ids for `penalty` (greedy.txt); their number in *n. */
static int *golden_ids(double penalty, int *n) {
    size_t size;
    char *text = slurp_golden(GOLDEN "repetition-penalty/greedy.txt", &size);
    int *ids = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *end;
        if (line[0] == '#' || fabs(strtod(line, &end) - penalty) > 1e-9) continue;
        *n = (int)strtol(end, &end, 10);
        ids = malloc(sizeof(int) * (size_t)*n);
        for (int i = 0; i < *n; i++) ids[i] = (int)strtol(end, &end, 10);
    }
    free(text);
    ck_assert_msg(ids != NULL, "no penalty %g in greedy.txt", penalty);
    return ids;
}

/* Run ./run greedily for the golden's number of tokens, with `flag` (NULL:
 * none) and compare the ids. */
static void check_greedy(double penalty, const char *flag, int reference, const char *hint) {
    int n = 0;
    int *want = golden_ids(penalty, &n);
    char steps[16], value[32];
    snprintf(steps, sizeof steps, "%d", n);
    snprintf(value, sizeof value, "%g", penalty);
    const char *argv[16] = {program("run"), PLAIN_MODEL, "-t", "0", "-n", steps, "-i", "", "-v", "--threads", "1"};
    int argc = 11;
    if (flag) { argv[argc++] = flag; argv[argc++] = value; }
    if (reference) argv[argc++] = "--reference";
    argv[argc] = NULL;
    Proc p = run_program(NULL, (char *const *)argv);
    if (!(p.exited && p.code == 0)) {
        char *newline = strchr(p.err, '\n');
        if (newline) *newline = '\0';
        kit_fail("./run %s%s%s: exit %d, \"%s\". Step 1: ./run must take the option --repeat-penalty FLOAT "
                 "(1 = off) and print it in --help", flag ? flag : "", flag ? " " : "", flag ? value : "", p.code,
                 p.err);
    }
    const char *ids = strstr(p.err, "generated ids (");
    ck_assert_msg(ids != NULL, "./run -v printed no generated ids: %s", p.err);
    char *end;
    int got_n = (int)strtol(ids + strlen("generated ids ("), &end, 10);
    end = strchr(end, ':') + 1;
    for (int i = 0; i < n; i++) {
        int got = i < got_n ? (int)strtol(end, &end, 10) : -1;
        if (got == want[i]) continue;
        kit_fail("penalty %g%s: generated token %d (after BOS and %d more): expected id %d (transformers), got %d. "
                 "%s", penalty, reference ? ", --reference" : "", i, i, want[i], got, hint);
    }
    printf("penalty %g%s: %d greedy tokens as transformers'\n", penalty, reference ? " (--reference)" : "", n);
    free_proc(&p);
    free(want);
}

#define PENALTY_HINT                                                                                           \
    "Before sampling, every token id that occurs in the context so far (the prompt, BOS included, and the "    \
    "tokens generated) has its logit divided by the penalty if it is positive and multiplied by it if it is "  \
    "negative, once per distinct token however often it occurred (transformers' "                             \
    "RepetitionPenaltyLogitsProcessor). Token 0 right and a later one wrong usually means the generated "      \
    "tokens are not added to the context, or a token is penalized once per occurrence"

START_TEST(test_penalty_above_one) {
    check_greedy(1.0, NULL, 0, "Without the option ./run must generate as before (this run.c is not the "
                 "handout's any more?)");
    check_greedy(1.3, "--repeat-penalty", 0, PENALTY_HINT);
}
END_TEST

START_TEST(test_penalty_below_one) {
    check_greedy(0.8, "--repeat-penalty", 0, PENALTY_HINT ". Below 1 the penalty rewards repeating: a positive "
                 "logit is divided by 0.8 (grows), a negative one multiplied (shrinks towards 0)");
}
END_TEST

START_TEST(test_penalty_reference_path) {
    check_greedy(1.3, "--repeat-penalty", 1, PENALTY_HINT ". With --reference ./run feeds tokens through "
                 "forward(); the penalty belongs to the sampling, which both paths share");
}
END_TEST

int main(void) {
    Suite *s = suite_create("course kit: extend exercises");
    TCase *tc = tcase_create("rope-scaling");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rope_scaled_reference);
    tcase_add_test(tc, test_rope_scaled_fast_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("sliding-window");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_window_reference);
    tcase_add_test(tc, test_window_fast_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("repetition-penalty");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_penalty_above_one);
    tcase_add_test(tc, test_penalty_below_one);
    tcase_add_test(tc, test_penalty_reference_path);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
