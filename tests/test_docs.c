/* test_docs.c — the documentation must stay true to the code.
 *
 * Scans README.md and every .md file in docs/ and checks:
 *
 *  1. Every inline code reference to a function, `name()`, names something
 *     that still exists in the sources (a "name(" in a .c, .h or .py file).
 *  2. Every inline reference to a repository file (`run.c`,
 *     `docs/format.md`, `lampfile.py`, ...) exists.
 *  3. Every command-line flag in inline code (`-t`, `--threads`) appears
 *     quoted ("-t" or '-t') in some source file, i.e. some program parses it.
 *     Markdown links to relative paths must point at existing files.
 *  4. Every fenced code block whose info string is `sh runnable` is run: each
 *     line starting with "$ " is a command (run with sh from the repository
 *     root); the lines after it, up to the next command, are the output it
 *     must print, exactly. A command with no output lines must just succeed.
 *
 * So renaming a function, moving a file, dropping a flag or changing what a
 * documented command prints makes `make test` fail until the docs follow. */
#include "tests/testutil.h"

#include <ctype.h>
#include <dirent.h>

/* ---- the sources, concatenated, for searching ---- */

static char *sources = NULL;
static size_t sources_len = 0;

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void add_source_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (!(has_suffix(name, ".c") || has_suffix(name, ".h") || has_suffix(name, ".py") || has_suffix(name, ".cu") ||
              strcmp(name, "Makefile") == 0))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t size;
        char *text = slurp(path, &size);
        if (!text) continue;
        sources = realloc(sources, sources_len + size + 2);
        memcpy(sources + sources_len, text, size);
        sources_len += size;
        sources[sources_len++] = '\n';
        sources[sources_len] = '\0';
        free(text);
    }
    closedir(d);
}

static void load_sources(void) {
    if (sources) return;
    const char *dirs[] = {".", "tools", "tests", "tests/golden", "tests/python", "port"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) add_source_dir(dirs[i]);
    ck_assert_msg(sources_len > 10000, "could not read the sources");
}

static int in_sources(const char *needle) { return strstr(sources, needle) != NULL; }

/* ---- the documents ---- */

typedef struct {
    char *paths[64];
    int n;
} DocList;

static DocList list_docs(void) {
    DocList docs = {.n = 0};
    docs.paths[docs.n++] = strdup("README.md");
    DIR *d = opendir("docs");
    ck_assert_msg(d != NULL, "no docs/ directory");
    struct dirent *e;
    while ((e = readdir(d)) && docs.n < 64) {
        if (!has_suffix(e->d_name, ".md")) continue;
        char path[300];
        snprintf(path, sizeof path, "docs/%s", e->d_name);
        docs.paths[docs.n++] = strdup(path);
    }
    closedir(d);
    return docs;
}

static int is_identifier_call(const char *s) {   /* name() */
    size_t n = strlen(s);
    if (n < 3 || strcmp(s + n - 2, "()") != 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (size_t i = 0; i < n - 2; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
    return 1;
}

static int is_flag(const char *s) {               /* -t, --threads */
    if (s[0] != '-' || strlen(s) < 2) return 0;
    const char *p = s + (s[1] == '-' ? 2 : 1);
    if (!isalpha((unsigned char)*p)) return 0;
    for (; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-')) return 0;
    return 1;
}

static int is_repo_path(const char *s) {
    static const char *ext[] = {".c", ".h", ".py", ".md", ".sh", ".txt", ".dot", ".png", ".json"};
    if (s[0] == '/' || s[0] == '~' || s[0] == '.' || strchr(s, ' ') || strchr(s, '*') || strchr(s, '<') ||
        strchr(s, '$') || strchr(s, ':') || strchr(s, '{') ||
        strncmp(s, "build/", 6) == 0)   /* build/ holds generated files */
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (has_suffix(s, ext[i])) return 1;
    return strncmp(s, "tests/", 6) == 0 || strncmp(s, "docs/", 5) == 0 || strncmp(s, "tools/", 6) == 0;
}

static int path_exists(const char *s) {
    struct stat st;
    char alt[600];
    if (stat(s, &st) == 0) return 1;
    snprintf(alt, sizeof alt, "docs/%s", s);   /* a link relative to docs/ */
    return stat(alt, &st) == 0;
}

/* Check every inline `code` span of one document; append problems to `report`. */
static int check_inline_references(const char *doc, char *report, size_t report_size) {
    size_t size;
    char *text = slurp(doc, &size);
    ck_assert_ptr_nonnull(text);
    int problems = 0, in_fence = 0, line_no = 0, checked = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        line_no++;
        if (strncmp(line, "```", 3) == 0) { in_fence = !in_fence; continue; }
        if (in_fence) continue;
        /* markdown links: [text](target) with a relative target must exist,
         * relative to the document's folder */
        for (char *link = strstr(line, "]("); link; link = strstr(link + 2, "](")) {
            char target[512];
            size_t n = strcspn(link + 2, ")#");
            if (n == 0 || n >= sizeof target || strncmp(link + 2, "http", 4) == 0 ||
                strncmp(link + 2, "mailto:", 7) == 0)
                continue;
            char dir[256];
            snprintf(dir, sizeof dir, "%s", doc);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0'; else strcpy(dir, ".");
            snprintf(target, sizeof target, "%s/%.*s", dir, (int)n, link + 2);
            struct stat st;
            checked++;
            if (stat(target, &st) != 0) {
                problems++;
                size_t used = strlen(report);
                snprintf(report + used, report_size - used, "\n  %s:%d: link to %.*s: no such file", doc,
                         line_no, (int)n, link + 2);
            }
        }
        for (char *open = strchr(line, '`'); open; open = strchr(open, '`')) {
            if (open[1] == '`') { open += 2; continue; }          /* `` spans: skip */
            char *close = strchr(open + 1, '`');
            if (!close) break;
            char span[256];
            size_t n = (size_t)(close - open - 1);
            if (n > 0 && n < sizeof span) {
                memcpy(span, open + 1, n);
                span[n] = '\0';
                const char *why = NULL;
                char needle[300];
                if (is_identifier_call(span)) {
                    snprintf(needle, sizeof needle, "%.*s(", (int)(n - 2), span);
                    checked++;
                    if (!in_sources(needle)) why = "no such function in the sources";
                } else if (is_flag(span)) {
                    char dq[300], sq[300];
                    snprintf(dq, sizeof dq, "\"%s\"", span);
                    snprintf(sq, sizeof sq, "'%s'", span);
                    checked++;
                    if (!in_sources(dq) && !in_sources(sq)) why = "no program parses this flag";
                } else if (is_repo_path(span)) {
                    checked++;
                    if (!path_exists(span)) why = "no such file";
                }
                if (why) {
                    problems++;
                    size_t used = strlen(report);
                    snprintf(report + used, report_size - used, "\n  %s:%d: `%s`: %s", doc, line_no, span, why);
                }
            }
            open = close + 1;
        }
    }
    free(text);
    printf("%-24s %3d code references checked, %d broken\n", doc, checked, problems);
    return problems;
}

START_TEST(test_code_references_exist) {
    load_sources();
    DocList docs = list_docs();
    static char report[16384];
    report[0] = '\0';
    int problems = 0;
    for (int i = 0; i < docs.n; i++) {
        problems += check_inline_references(docs.paths[i], report, sizeof report);
        free(docs.paths[i]);
    }
    /* Check's messages are limited to a few KB: the whole list goes to stdout */
    if (problems) printf("broken references in the docs:%s\n", report);
    ck_assert_msg(problems == 0, "%d broken references in the docs:%.2000s", problems, report);
}
END_TEST

/* ---- runnable blocks ---- */

typedef struct {
    char *command;
    char *expected;   /* the output lines shown after it, '\n'-terminated */
} Example;

static int run_example(const char *doc, int line_no, const Example *ex, char *report, size_t report_size) {
    char *argv[] = {"/bin/sh", "-c", ex->command, NULL};
    Proc p = run_program(NULL, argv);
    const char *why = NULL;
    if (!p.exited || p.code != 0) why = "it failed";
    else if (ex->expected[0] && strcmp(p.out, ex->expected) != 0) why = "its output differs from the one shown";
    if (why) {
        size_t used = strlen(report);
        snprintf(report + used, report_size - used, "\n  %s:%d: `%s`: %s\n--- shown ---\n%s--- printed (exit %d) ---\n%s%s",
                 doc, line_no, ex->command, why, ex->expected, p.code, p.out, p.err);
    }
    free_proc(&p);
    return why != NULL;
}

static int check_runnable_blocks(const char *doc, int *n_run, char *report, size_t report_size) {
    size_t size;
    char *text = slurp(doc, &size);
    ck_assert_ptr_nonnull(text);
    int problems = 0, in_block = 0, line_no = 0, command_line = 0;
    Example ex = {NULL, NULL};
    size_t expected_len = 0;
    char *cursor = text;
    while (*cursor) {
        char *end = strchr(cursor, '\n');
        size_t len = end ? (size_t)(end - cursor) : strlen(cursor);
        char line[4096];
        snprintf(line, sizeof line, "%.*s", (int)len, cursor);
        cursor += len + (end ? 1 : 0);
        line_no++;
        if (!in_block) {
            if (strcmp(line, "```sh runnable") == 0) in_block = 1;
            continue;
        }
        int closing = strncmp(line, "```", 3) == 0;
        int is_command = strncmp(line, "$ ", 2) == 0;
        if ((closing || is_command) && ex.command) {
            problems += run_example(doc, command_line, &ex, report, report_size);
            (*n_run)++;
            free(ex.command);
            free(ex.expected);
            ex.command = ex.expected = NULL;
        }
        if (closing) { in_block = 0; continue; }
        if (is_command) {
            ex.command = strdup(line + 2);
            ex.expected = calloc(1, 1);
            expected_len = 0;
            command_line = line_no;
        } else if (ex.command) {
            ex.expected = realloc(ex.expected, expected_len + len + 2);
            memcpy(ex.expected + expected_len, line, len);
            expected_len += len;
            ex.expected[expected_len++] = '\n';
            ex.expected[expected_len] = '\0';
        }
    }
    ck_assert_msg(!in_block, "%s: a runnable block is not closed", doc);
    free(text);
    return problems;
}

START_TEST(test_runnable_blocks_run) {
    DocList docs = list_docs();
    static char report[65536];
    report[0] = '\0';
    int problems = 0, n_run = 0;
    for (int i = 0; i < docs.n; i++) {
        problems += check_runnable_blocks(docs.paths[i], &n_run, report, sizeof report);
        free(docs.paths[i]);
    }
    printf("docs: %d runnable commands run, %d failed\n", n_run, problems);
    if (problems) printf("documented commands that do not do what the docs say:%s\n", report);
    ck_assert_msg(problems == 0, "%d documented commands do not do what the docs say:%.2000s", problems, report);
}
END_TEST

int main(void) {
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("docs");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_code_references_exist);
    tcase_add_test(tc, test_runnable_blocks_run);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
