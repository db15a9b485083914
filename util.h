/* util.h — the three helpers every lamp program shares: a fatal error that
 * prints one line and exits, and allocation that never returns NULL.
 *
 * Why a header of its own: run.c, tokenizer.c and the tests all need exactly
 * these, and "one concept, one place" beats three copies. They are static
 * inline so each program stays a plain compile of its own .c files. */
#ifndef LAMP_UTIL_H
#define LAMP_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Print "lamp: <message>" as a single line on stderr and exit with status 1.
 * Every user-facing error in lamp goes through here, so every error is one
 * line that names the problem, and the exit status is never 0. */
__attribute__((format(printf, 1, 2), noreturn))
static inline void fatal(const char *fmt, ...) {
    va_list ap;
    fflush(stdout); /* keep what was already printed in front of the error */
    fputs("lamp: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

/* malloc/calloc/realloc that either succeed or stop the program with a
 * message saying how much memory was asked for. */
static inline void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) fatal("out of memory allocating %zu bytes", bytes);
    return p;
}
static inline void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) fatal("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}
static inline void *xrealloc(void *old, size_t bytes) {
    void *p = realloc(old, bytes ? bytes : 1);
    if (!p) fatal("out of memory allocating %zu bytes", bytes);
    return p;
}

#endif
