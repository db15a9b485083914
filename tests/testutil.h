/* testutil.h — small helpers shared by lamp's Check suites: read a file,
 * write a file, compare two, and run one of lamp's programs as a child
 * process capturing its exit status, stdout and stderr. Tests run from the
 * repository root. (tests/goldens.h holds what the model suites share.) */
/* The helpers are `static inline`, as in util.h: a header's function that
 * one suite leaves unused is no warning. */
#ifndef LAMP_TESTUTIL_H
#define LAMP_TESTUTIL_H

#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMP_DIR "tests/tmp"

/* Whole file into memory (NUL-terminated for convenience); NULL (and a
 * size of 0) if missing. */
static inline char *slurp(const char *path, size_t *size) {
    if (size) *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (size) *size = (size_t)n;
    return buf;
}

static inline void write_file(const char *path, const void *data, size_t size) {
    mkdir(TMP_DIR, 0755);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_int_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

/* Path of a program of the build under test: $LAMP_BIN/name (LAMP_BIN is
 * set by `make test` / `make asan`; "." by default). */
static inline const char *program(const char *name) {
    static char path[4][512];
    static int next = 0;
    const char *dir = getenv("LAMP_BIN");
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir && *dir ? dir : ".", name);
    return p;
}

typedef struct {
    int exited;     /* 1 if the process exited normally (not killed by a signal) */
    int code;       /* its exit status */
    int signal;     /* the signal that killed it, if any */
    char *out, *err;
    size_t out_len, err_len;
} Proc;

/* Run argv (argv[0] is the program path), feeding stdin_text (or nothing)
 * on standard input, and capture everything. */
static inline Proc run_program(const char *stdin_text, char *const argv[]) {
    mkdir(TMP_DIR, 0755);
    char in_path[64], out_path[64], err_path[64];
    snprintf(in_path, sizeof in_path, TMP_DIR "/stdin.%d", (int)getpid());
    snprintf(out_path, sizeof out_path, TMP_DIR "/stdout.%d", (int)getpid());
    snprintf(err_path, sizeof err_path, TMP_DIR "/stderr.%d", (int)getpid());
    write_file(in_path, stdin_text ? stdin_text : "", stdin_text ? strlen(stdin_text) : 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in = open(in_path, O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    Proc p = {0};
    p.exited = WIFEXITED(status);
    p.code = p.exited ? WEXITSTATUS(status) : -1;
    p.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    p.out = slurp(out_path, &p.out_len);
    p.err = slurp(err_path, &p.err_len);
    unlink(in_path);
    unlink(out_path);
    unlink(err_path);
    return p;
}

static inline void free_proc(Proc *p) {
    free(p->out);
    free(p->err);
}

/* run_program(NULL, ...) on the arguments `args` followed by `extra` (each
 * list NULL-terminated): a suite's common command line plus a test's own. */
static inline Proc run_program_plus(const char *const *args, const char *const *extra) {
    const char *argv[64];
    int n = 0;
    for (int i = 0; args[i]; i++) argv[n++] = args[i];
    for (int i = 0; extra[i]; i++) argv[n++] = extra[i];
    ck_assert_int_lt(n, 64);
    argv[n] = NULL;
    return run_program(NULL, (char *const *)argv);
}

/* A program that must have succeeded: exit status 0, else fail with `what`
 * and its stderr. */
static inline void expect_success(Proc *p, const char *what) {
    ck_assert_msg(p->exited && p->code == 0, "%s: exit %d, stderr: %s", what, p->code, p->err);
}

/* 1 if the two files exist and hold the same bytes. */
static inline int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Run a suite with Check (each test in its own process, so a crash is a
 * failure, not the end of the run), print its report, and turn the result
 * into the exit status: non-zero if any test failed. The report is Check's
 * normal one unless CK_VERBOSITY says otherwise (`make grade` sets
 * "verbose": a line for every test, passed or not). */
static inline int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
