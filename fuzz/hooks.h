/* fuzz/hooks.h — put in front of every lamp source of a fuzz build (make
 * fuzz compiles them with `-include fuzz/hooks.h`; docs/fuzzing.md).
 *
 * lamp answers bad input with fatal(): one line, then exit(1). A fuzzer
 * runs thousands of inputs a second in one process, so there exit() must
 * not end the process, and what the input had allocated must not pile up.
 * Here exit, the allocator and mmap are renamed to the fuzz_* functions of
 * fuzz/hooks.c: they record every block and mapping while an input runs,
 * and fuzz_exit() jumps back to fuzz_run(), which releases them. The
 * sources themselves are compiled unchanged. */
#ifndef LAMP_FUZZ_HOOKS_H
#define LAMP_FUZZ_HOOKS_H

/* the sources' own feature macro, set before the first system header */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *fuzz_malloc(size_t size);
void *fuzz_calloc(size_t count, size_t size);
void *fuzz_realloc(void *old, size_t size);
void fuzz_free(void *p);
int fuzz_posix_memalign(void **p, size_t alignment, size_t size);
void *fuzz_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int fuzz_munmap(void *addr, size_t length);
__attribute__((noreturn)) void fuzz_exit(int status);

/* Run body(data, size): returns 0 if it returned, 1 if it called fatal().
 * Either way, cleanup() runs (for memory that static variables hold), then
 * everything still allocated is released. If body returned normally and
 * left memory behind, that is a leak: the process aborts, as a finding. */
int fuzz_run(void (*body)(const uint8_t *data, size_t size), const uint8_t *data, size_t size,
             void (*cleanup)(void));

/* Write data to this process's scratch file and return its path: the
 * loaders take paths. */
const char *fuzz_scratch_file(int which, const uint8_t *data, size_t size);

#define malloc fuzz_malloc
#define calloc fuzz_calloc
#define realloc fuzz_realloc
#define free fuzz_free
#define posix_memalign fuzz_posix_memalign
#define mmap fuzz_mmap
#define munmap fuzz_munmap
#define exit fuzz_exit

#endif
