/* fuzz/hooks.c — the other side of fuzz/hooks.h: a record of what one
 * fuzz input allocated, and a fatal() that returns to fuzz_run(). This file
 * is compiled without the renaming, so here malloc is the real malloc. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The live blocks: an open-addressing set of pointers (linear probing;
 * REMOVED marks a freed slot so later probes go on past it). */
#define REMOVED ((void *)1)
static void **blocks;
static size_t capacity, n_live, n_used;   /* n_used counts removed slots too */
static int recording;                     /* only while fuzz_run runs an input */
static jmp_buf *fatal_return;

/* and the live mappings (the model loader maps one file) */
#define MAX_MAPS 16
static struct { void *addr; size_t length; } maps[MAX_MAPS];

static size_t slot_of(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (capacity - 1);
}

static void insert(void *p);

static void grow(void) {
    void **old = blocks;
    size_t old_capacity = capacity;
    capacity = capacity ? capacity : 1024;
    while (capacity < 4 * (n_live + 1)) capacity *= 2;
    blocks = calloc(capacity, sizeof(void *));
    if (!blocks) abort();
    n_live = n_used = 0;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] && old[i] != REMOVED) insert(old[i]);
    free(old);
}

static void insert(void *p) {
    if (2 * (n_used + 1) > capacity) grow();
    size_t i = slot_of(p);
    while (blocks[i] && blocks[i] != REMOVED) i = (i + 1) & (capacity - 1);
    if (!blocks[i]) n_used++;
    blocks[i] = p;
    n_live++;
}

/* 1 if p was recorded (and is not any more) */
static int forget(void *p) {
    if (!capacity || !p) return 0;
    for (size_t i = slot_of(p); blocks[i]; i = (i + 1) & (capacity - 1)) {
        if (blocks[i] == p) {
            blocks[i] = REMOVED;
            n_live--;
            return 1;
        }
    }
    return 0;
}

static void *remember(void *p) {
    if (recording && p) insert(p);
    return p;
}

void *fuzz_malloc(size_t size) { return remember(malloc(size)); }
void *fuzz_calloc(size_t count, size_t size) { return remember(calloc(count, size)); }

void *fuzz_realloc(void *old, size_t size) {
    int was_recorded = forget(old);
    void *p = realloc(old, size);
    if (!p) {   /* old is still valid */
        if (was_recorded) insert(old);
        return NULL;
    }
    return (was_recorded || !old) ? remember(p) : p;
}

void fuzz_free(void *p) {
    forget(p);
    free(p);
}

int fuzz_posix_memalign(void **p, size_t alignment, size_t size) {
    int status = posix_memalign(p, alignment, size);
    if (status == 0) remember(*p);
    return status;
}

void *fuzz_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    void *map = mmap(addr, length, prot, flags, fd, offset);
    if (map == MAP_FAILED || !recording) return map;
    for (int i = 0; i < MAX_MAPS; i++) {
        if (!maps[i].addr) {
            maps[i].addr = map;
            maps[i].length = length;
            return map;
        }
    }
    abort();   /* more live mappings than any lamp loader makes */
}

int fuzz_munmap(void *addr, size_t length) {
    for (int i = 0; i < MAX_MAPS; i++)
        if (maps[i].addr == addr) maps[i].addr = NULL;
    return munmap(addr, length);
}

void fuzz_exit(int status) {
    if (fatal_return) longjmp(*fatal_return, 1);
    exit(status);
}

static size_t release_everything(void) {
    size_t released = n_live;
    for (size_t i = 0; i < capacity; i++) {
        if (blocks[i] && blocks[i] != REMOVED) free(blocks[i]);
        blocks[i] = NULL;
    }
    n_live = n_used = 0;
    for (int i = 0; i < MAX_MAPS; i++) {
        if (maps[i].addr) {
            munmap(maps[i].addr, maps[i].length);
            maps[i].addr = NULL;
            released++;
        }
    }
    return released;
}

int fuzz_run(void (*body)(const uint8_t *data, size_t size), const uint8_t *data, size_t size,
             void (*cleanup)(void)) {
    jmp_buf here;
    recording = 1;
    fatal_return = &here;
    int failed = setjmp(here) != 0;
    if (!failed) body(data, size);
    fatal_return = NULL;
    if (cleanup) cleanup();
    size_t left = release_everything();
    recording = 0;
    if (!failed && left > 0) {
        fprintf(stderr, "fuzz: an input that loaded without error left %zu blocks allocated (a leak)\n", left);
        abort();
    }
    return failed;
}

static char scratch_paths[4][64];

static void remove_scratch_files(void) {
    for (int i = 0; i < 4; i++)
        if (scratch_paths[i][0]) unlink(scratch_paths[i]);
}

const char *fuzz_scratch_file(int which, const uint8_t *data, size_t size) {
    char *path = scratch_paths[which & 3];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof scratch_paths[0], "%s/lamp-fuzz-%d-%d", dir, (int)getpid(), which & 3);
        static int registered = 0;
        if (!registered) registered = atexit(remove_scratch_files) == 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); abort(); }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) { perror(path); abort(); }
        done += (size_t)n;
    }
    close(fd);
    return path;
}
