/*
 * Corpus replay driver: a main() for the fuzz targets without libFuzzer, so
 * that the normal build (gcc or clang, with or without sanitizers) runs the
 * committed seeds and reproducers as meson tests (suite 'fuzz').
 *
 *   fuzz_replay_TARGET [-p PREFIX] PATH...
 *
 * Each PATH is a file, or a directory whose regular files are replayed in
 * name order (not recursively); -p keeps only the files of the following
 * directories whose name starts with PREFIX (fuzz/repro/ holds the
 * reproducers of every target). A directory that does not exist is
 * skipped (a target may have no reproducer). Every input goes through
 * LLVMFuzzerTestOneInput once; a broken property aborts, which fails the
 * test. Exit status 0 when every input ran, 2 on an I/O error or when no
 * input was found at all (a wrong path must not pass silently).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target: weak, so a target without it links. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long replayed;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *t = realloc(buf, cap);
            if (!t) abort();
            buf = t;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return 2;
    }
    /* an exact-size copy, so that ASan sees a read past the input */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) abort();
    memcpy(in, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    replayed++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 64;
            char **t = realloc(names, cap * sizeof *t);
            if (!t) abort();
            names = t;
        }
        names[nn] = strdup(e->d_name);
        if (!names[nn]) abort();
        nn++;
    }
    closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < nn; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (!p) abort();
        snprintf(p, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && run_file(p) != 0) rc = 2;
        free(p);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    const char *prefix = NULL;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            prefix = argv[++i];
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            if (errno == ENOENT) continue;
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            rc = 2;
        } else if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], prefix) != 0) rc = 2;
        } else if (run_file(argv[i]) != 0) {
            rc = 2;
        }
    }
    fprintf(stderr, "replay: %lu input(s), %s\n", replayed, rc ? "with errors" : "all passed");
    if (rc == 0 && replayed == 0) {
        fputs("replay: no input found (wrong corpus path?)\n", stderr);
        return 2;
    }
    return rc;
}
