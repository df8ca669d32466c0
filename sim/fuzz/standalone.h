/* SPDX-License-Identifier: MIT */
/*
 * standalone.h: the main() of a fuzz target built with -DHVSIM_FUZZ_STANDALONE
 * and plain gcc (no libFuzzer): it runs LLVMFuzzerTestOneInput once on each
 * file named on the command line, or on stdin without one, so a crash or a
 * corpus can be replayed under gdb or valgrind. Included at the end of each
 * sim/fuzz/fuzz_<name>.c, which provides the stdio/stdint/stdlib includes.
 */
#ifndef HVSIM_FUZZ_STANDALONE_H
#define HVSIM_FUZZ_STANDALONE_H

static int run_stream(FILE *f, const char *name)
{
    size_t cap = 4096, n = 0, k;
    uint8_t *buf = malloc(cap), *nb;

    if (buf == NULL)
        return -1;
    while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: read error\n", name);
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    printf("%s: %zu bytes ok\n", name, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int i, failed = 0;

    if (argc < 2)
        return run_stream(stdin, "<stdin>") < 0;
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");

        if (f == NULL) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (run_stream(f, argv[i]) < 0)
            failed = 1;
        fclose(f);
    }
    return failed;
}

#endif /* HVSIM_FUZZ_STANDALONE_H */
