/* test_sampler.c — run.c's sampler against goldens.
 *
 * tests/golden/gen_sampler.py implements the sampling rules (xorshift* RNG,
 * temperature, softmax, top-p with llama2.c's cutoff, top-k) in Python from
 * their specification and records, for fixed logits and seeds, the ids
 * drawn 500 times in a row. The C sampler must draw exactly the same ids. */
#define RUN_NO_MAIN
#include "run.c"
#include "tests/testutil.h"

/* Parse one case from the golden file; returns 0 at the end of the file.
 * "case T P K SEED N DRAWS" / N logits / DRAWS ids. */
static int run_case(FILE *f, int *n_cases, int *n_draws_total) {
    double temperature, topp;
    int topk, n, draws;
    unsigned long long seed;
    int got = fscanf(f, " case %lf %lf %d %llu %d %d", &temperature, &topp, &topk, &seed, &n, &draws);
    if (got == EOF) return 0;
    ck_assert_msg(got == 6, "malformed case header in sampler.txt (case %d)", *n_cases + 1);
    float *logits = malloc(sizeof(float) * n), *work = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) ck_assert_int_eq(fscanf(f, "%f", &logits[i]), 1);
    Sampler s;
    build_sampler(&s, n, (float)temperature, (float)topp, topk, seed);
    for (int d = 0; d < draws; d++) {
        int want;
        ck_assert_int_eq(fscanf(f, "%d", &want), 1);
        memcpy(work, logits, sizeof(float) * n);  /* sample() works in place */
        int id = sample(&s, work);
        ck_assert_msg(id == want, "case %d (t=%g p=%g k=%d seed=%llu n=%d): draw %d gave %d, golden %d",
                      *n_cases + 1, temperature, topp, topk, seed, n, d, id, want);
    }
    free_sampler(&s);
    free(logits);
    free(work);
    (*n_cases)++;
    *n_draws_total += draws;
    return 1;
}

START_TEST(test_sampler_goldens) {
    FILE *f = fopen("tests/golden/sampler.txt", "r");
    ck_assert_msg(f != NULL, "missing tests/golden/sampler.txt");
    int n_cases = 0, n_draws = 0;
    while (run_case(f, &n_cases, &n_draws)) {}
    fclose(f);
    ck_assert_int_ge(n_cases, 10);   /* the file really was read */
    printf("sampler: %d cases, %d draws, all identical to the golden\n", n_cases, n_draws);
}
END_TEST

/* The RNG itself: xorshift* from seed 42 — first outputs, and the [0,1) float. */
START_TEST(test_rng_range_and_determinism) {
    uint64_t a = 42, b = 42;
    for (int i = 0; i < 10000; i++) {
        float x = random_f32(&a);
        ck_assert(x >= 0.0f && x < 1.0f);
        ck_assert(random_f32(&b) == x);
    }
}
END_TEST

/* Temperature 0 is argmax whatever the other knobs say, and draws nothing. */
START_TEST(test_greedy_draws_no_random_number) {
    float logits[5] = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f};
    Sampler s;
    build_sampler(&s, 5, 0.0f, 0.9f, 3, 7);
    ck_assert_int_eq(sample(&s, logits), 1);   /* first of the tied maxima */
    ck_assert(s.rng_state == 7);
    free_sampler(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sampler_goldens);
    tcase_add_test(tc, test_rng_range_and_determinism);
    tcase_add_test(tc, test_greedy_draws_no_random_number);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
