/* Diagnostics: FILE:LINE:COL: message. */
#include <stdio.h>

#include "contracts/int.h"

static void emit_stderr(void *ud, const char *file, int line, int col, const char *msg)
{
    (void)ud;
    if (line > 0)
        fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
    else if (file && *file)
        fprintf(stderr, "%s: %s\n", file, msg);
    else
        fprintf(stderr, "privgate: %s\n", msg);
}

void ctr_diag_stderr(struct ctr_diag *d)
{
    d->emit = emit_stderr;
    d->ud = NULL;
    d->errors = 0;
}

void ctr__vdiag(struct ctr_diag *d, const char *file, int line, int col, const char *fmt,
                va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!d) return;
    d->errors++;
    if (d->emit) d->emit(d->ud, file ? file : "", line, col, msg);
}

void ctr__diag(struct ctr_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctr__vdiag(d, file, line, col, fmt, ap);
    va_end(ap);
}
