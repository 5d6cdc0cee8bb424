/* privgate filter: dry-run one request through a contract (SPEC section 2). */
#include "proxy/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char filter_usage[] =
    "usage: privgate filter -C CONTRACT [-m METHOD] -p PATH [--purpose P]\n"
    "                       [--caller C] [-H 'name: value']... [-T CONTENT-TYPE]\n"
    "                       [--explain] [FILE|-]\n"
    "\n"
    "Runs one request through a contract, exactly as the gateway would, and\n"
    "prints the body it would forward to the provider. The body is read from\n"
    "FILE, or from stdin ('-', or no FILE and stdin not a terminal).\n"
    "\n"
    "Options:\n"
    "  -C, --contract CONTRACT  the provider's contract file (a directory of\n"
    "                           contracts: PATH then starts with /<provider>)\n"
    "  -m, --method METHOD      request method (default: POST)\n"
    "  -p, --path PATH          the provider's path with query, as the provider\n"
    "                           would see it, e.g. /v1/shipments?dry_run=1\n"
    "      --purpose P          the purpose the request declares\n"
    "      --caller C           the calling service\n"
    "  -H, --header 'N: V'      a request header (repeatable)\n"
    "  -T, --content-type TYPE  content type of the body (default:\n"
    "                           application/json when the body is not empty)\n"
    "      --explain            print one JSON object: outcome, forwarded method,\n"
    "                           path, headers and body, removed and transformed\n"
    "  -h, --help               show this help\n"
    "\n"
    "A refusal prints 'privgate: refused: <code>' on stderr (and with --explain\n"
    "{\"outcome\":\"refused\",\"status\":N,\"error\":\"<code>\"} on stdout).\n"
    "Exit status: 0 forwarded, 1 contract invalid, 2 bad usage, 3 refused.\n";

enum { OPT_PURPOSE = 256, OPT_CALLER, OPT_EXPLAIN };

struct filter_opts {
    const char *contract, *method, *path, *purpose, *caller, *ctype, *file;
    bool explain;
    const char **hdr; /* -H arguments as given */
    size_t nhdr;
};

/* Splits -H 'name: value' into a lower-case name (malloc'd) and a value view
 * without surrounding blanks. Returns 0, or -1 when it is not a header. */
static int parse_header(const char *arg, struct ctr_header *h)
{
    const char *colon = strchr(arg, ':');
    if (colon == NULL || colon == arg) return -1;
    size_t nlen = (size_t)(colon - arg);
    char *name = malloc(nlen + 1);
    if (name == NULL) return -1;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char ch = (unsigned char)arg[i];
        /* RFC 9110 5.1: field names are tokens. */
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch) != NULL) {
            free(name);
            return -1;
        }
        name[i] = (char)tolower(ch);
    }
    name[nlen] = '\0';
    const char *v = colon + 1, *end = v + strlen(v);
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    h->name = (struct flt_str){name, nlen};
    h->value = (struct flt_str){v, (size_t)(end - v)};
    return 0;
}

static bool str_eq(struct flt_str a, const char *b)
{
    return b != NULL && a.len == strlen(b) && memcmp(a.p, b, a.len) == 0;
}

static bool flt_str_eq(struct flt_str a, struct flt_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static int read_body(const char *file, struct px_buf *body)
{
    int fd = STDIN_FILENO;
    if (file == NULL && isatty(STDIN_FILENO)) return 0; /* nothing piped in: an empty body */
    if (file != NULL && strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return px_cli_usage_error("filter", "cannot open %s: %s", file, strerror(errno));
    }
    int rc = px_read_fd(fd, body);
    int err = errno;
    if (fd != STDIN_FILENO) close(fd);
    if (rc != 0) {
        if (err == ENOMEM) {
            fputs("privgate: filter: out of memory\n", stderr);
            return PX_EXIT_FAIL;
        }
        return px_cli_usage_error("filter", "cannot read %s: %s", file ? file : "stdin",
                                  strerror(err));
    }
    return 0;
}

static void put_list(struct px_buf *o, const char *key, const struct flt_pathlist *l)
{
    px_buf_puts(o, ",\"");
    px_buf_puts(o, key);
    px_buf_puts(o, "\":[");
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str p = flt_pathlist_get(l, i);
        if (i > 0) px_buf_put(o, ",", 1);
        px_buf_json_str(o, p.p, p.len);
    }
    px_buf_put(o, "]", 1);
}

/* The --explain object of a forwarded request (SPEC section 2). Headers
 * forwarded more than once are joined with ", " (RFC 9110 5.3) so the
 * object has each name once. */
static void explain_forwarded(struct px_buf *o, const struct ctr_contract *c,
                              const struct ctr_result *r)
{
    const struct ctr_decision *d = &r->d;
    px_buf_puts(o, "{\"outcome\":\"forwarded\",\"method\":");
    px_buf_json_str(o, d->method.p, d->method.len);
    px_buf_puts(o, ",\"path\":");
    px_buf_json_str(o, d->path, d->path_len);
    px_buf_puts(o, ",\"headers\":{");
    bool first = true;
    for (size_t i = 0; i < d->nfwd; i++) {
        const struct ctr_header *h = &d->fwd[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = flt_str_eq(d->fwd[j].name, h->name);
        if (seen) continue;
        if (!first) px_buf_put(o, ",", 1);
        first = false;
        px_buf_json_str(o, h->name.p, h->name.len);
        px_buf_put(o, ":", 1);
        if (d->injected && str_eq(h->name, c->upstream.auth_header)) {
            px_buf_puts(o, "\"(injected)\"");
            continue;
        }
        /* Join the values of every header of this name. */
        struct px_buf v = {0};
        for (size_t j = i; j < d->nfwd; j++) {
            if (!flt_str_eq(d->fwd[j].name, h->name)) continue;
            if (j > i) px_buf_put(&v, ", ", 2);
            px_buf_put(&v, d->fwd[j].value.p, d->fwd[j].value.len);
        }
        if (v.failed) o->failed = true;
        px_buf_json_str(o, v.p ? v.p : "", v.len);
        px_buf_free(&v);
    }
    px_buf_puts(o, "},\"body\":");
    px_buf_json_str(o, r->body ? r->body : "", r->body ? r->body_len : 0);
    put_list(o, "removed", &d->report.removed);
    put_list(o, "transformed", &d->report.transformed);
    char num[32];
    if (d->report.removed.more > 0) {
        snprintf(num, sizeof num, "%u", (unsigned)d->report.removed.more);
        px_buf_puts(o, ",\"removed_more\":");
        px_buf_puts(o, num);
    }
    if (d->report.transformed.more > 0) {
        snprintf(num, sizeof num, "%u", (unsigned)d->report.transformed.more);
        px_buf_puts(o, ",\"transformed_more\":");
        px_buf_puts(o, num);
    }
    px_buf_puts(o, "}\n");
}

/* Prints a refusal; returns PX_EXIT_REFUSED. */
static int refused(bool explain, int status, const char *code)
{
    if (code == NULL) code = "refused";
    if (explain) {
        struct px_buf o = {0};
        char num[16];
        snprintf(num, sizeof num, "%d", status);
        px_buf_puts(&o, "{\"outcome\":\"refused\",\"status\":");
        px_buf_puts(&o, num);
        px_buf_puts(&o, ",\"error\":");
        px_buf_json_str(&o, code, strlen(code));
        px_buf_puts(&o, "}\n");
        if (!o.failed) fwrite(o.p, 1, o.len, stdout);
        px_buf_free(&o);
    }
    fprintf(stderr, "privgate: refused: %s\n", code);
    return PX_EXIT_REFUSED;
}

static int parse_opts(int argc, char **argv, struct filter_opts *o)
{
    static const struct option longopts[] = {
        {"contract", required_argument, NULL, 'C'},
        {"method", required_argument, NULL, 'm'},
        {"path", required_argument, NULL, 'p'},
        {"purpose", required_argument, NULL, OPT_PURPOSE},
        {"caller", required_argument, NULL, OPT_CALLER},
        {"header", required_argument, NULL, 'H'},
        {"content-type", required_argument, NULL, 'T'},
        {"explain", no_argument, NULL, OPT_EXPLAIN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:m:p:H:T:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'C': o->contract = optarg; break;
        case 'm': o->method = optarg; break;
        case 'p': o->path = optarg; break;
        case OPT_PURPOSE: o->purpose = optarg; break;
        case OPT_CALLER: o->caller = optarg; break;
        case 'H': o->hdr[o->nhdr++] = optarg; break;
        case 'T': o->ctype = optarg; break;
        case OPT_EXPLAIN: o->explain = true; break;
        case 'h': fputs(filter_usage, stdout); return -1;
        default: return px_cli_bad_option("filter", c, argv);
        }
    }
    if (argc - optind > 1) return px_cli_usage_error("filter", "more than one body FILE given");
    if (optind < argc) o->file = argv[optind];
    if (o->contract == NULL) return px_cli_usage_error("filter", "-C CONTRACT is required");
    if (o->path == NULL) return px_cli_usage_error("filter", "-p PATH is required");
    if (o->path[0] != '/') return px_cli_usage_error("filter", "PATH must start with '/'");
    if (o->method[0] == '\0') return px_cli_usage_error("filter", "METHOD must not be empty");
    return 0;
}

int px_cli_filter(int argc, char **argv)
{
    struct filter_opts o = {.method = "POST"};
    struct ctr_header *hdrs = NULL;
    size_t nhdrs = 0;
    struct px_buf body = {0};
    struct ctr_set *set = NULL;
    int rc;

    o.hdr = calloc((size_t)argc + 1, sizeof *o.hdr);
    hdrs = calloc((size_t)argc + 1, sizeof *hdrs); /* -H entries + content-type */
    if (o.hdr == NULL || hdrs == NULL) {
        fputs("privgate: filter: out of memory\n", stderr);
        rc = PX_EXIT_FAIL;
        goto out;
    }
    rc = parse_opts(argc, argv, &o);
    if (rc != 0) {
        if (rc < 0) rc = PX_EXIT_OK; /* --help */
        goto out;
    }

    /* Headers: -H as given; -T replaces any content-type among them. */
    bool have_ctype = false;
    for (size_t i = 0; i < o.nhdr; i++) {
        struct ctr_header h;
        if (parse_header(o.hdr[i], &h) != 0) {
            rc = px_cli_usage_error("filter", "-H needs 'name: value', got '%s'", o.hdr[i]);
            goto out;
        }
        if (o.ctype != NULL && str_eq(h.name, "content-type")) {
            free((char *)h.name.p);
            continue;
        }
        have_ctype |= str_eq(h.name, "content-type");
        hdrs[nhdrs++] = h;
    }

    rc = read_body(o.file, &body);
    if (rc != 0) goto out;
    if (body.failed) {
        fputs("privgate: filter: out of memory\n", stderr);
        rc = PX_EXIT_FAIL;
        goto out;
    }
    const char *ctype = o.ctype;
    if (ctype == NULL && !have_ctype && body.len > 0) ctype = "application/json";
    if (ctype != NULL) {
        char *name = strdup("content-type");
        if (name == NULL) {
            rc = PX_EXIT_FAIL;
            goto out;
        }
        hdrs[nhdrs++] = (struct ctr_header){{name, 12}, {ctype, strlen(ctype)}};
    }

    const char *paths[1] = {o.contract};
    set = px_cli_load(NULL, paths, 1);
    if (set == NULL) {
        fputs("privgate: filter: contract invalid\n", stderr);
        rc = PX_EXIT_FAIL;
        goto out;
    }
    const struct ctr_contract *c = NULL;
    struct flt_str path = {o.path, strlen(o.path)};
    struct stat st;
    if (stat(o.contract, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A directory: the first path segment names the provider, as on
         * the gateway. */
        c = ctr_set_find_provider(set, o.path, strlen(o.path), &path);
        if (c == NULL) {
            rc = refused(o.explain, 404, "unknown_provider");
            goto out;
        }
    } else if (set->ncontracts == 1) {
        c = set->contracts[0];
    } else {
        fprintf(stderr, "privgate: filter: %s holds no single contract\n", o.contract);
        rc = PX_EXIT_FAIL;
        goto out;
    }

    struct ctr_request req = {
        .method = {o.method, strlen(o.method)},
        .path = path,
        .headers = hdrs,
        .nheaders = nhdrs,
    };
    if (o.purpose != NULL) req.purpose = (struct flt_str){o.purpose, strlen(o.purpose)};
    if (o.caller != NULL) {
        req.caller = (struct flt_str){o.caller, strlen(o.caller)};
    } else {
        /* Without --caller, the caller header names the caller, as on a
         * gateway listener without mTLS. */
        const char *ch = set->config.caller_header ? set->config.caller_header : "privgate-caller";
        for (size_t i = 0; i < nhdrs; i++)
            if (str_eq(hdrs[i].name, ch)) req.caller = hdrs[i].value;
    }

    struct ctr_result *r = calloc(1, sizeof *r); /* large: keep it off the stack */
    if (r == NULL) {
        fputs("privgate: filter: out of memory\n", stderr);
        rc = PX_EXIT_FAIL;
        goto out;
    }
    int run = ctr_run(&set->config, c, &req, body.p ? body.p : "", body.len, r);
    if (r->d.status != 0) {
        rc = refused(o.explain, r->d.status, r->d.error);
    } else if (run < 0) {
        fprintf(stderr, "privgate: filter: internal error (%d)\n", run);
        rc = PX_EXIT_FAIL;
    } else if (o.explain) {
        struct px_buf out = {0};
        explain_forwarded(&out, c, r);
        if (out.failed) {
            fputs("privgate: filter: out of memory\n", stderr);
            rc = PX_EXIT_FAIL;
        } else {
            fwrite(out.p, 1, out.len, stdout);
            rc = PX_EXIT_OK;
        }
        px_buf_free(&out);
    } else {
        if (r->body != NULL) fwrite(r->body, 1, r->body_len, stdout);
        rc = PX_EXIT_OK;
    }
    ctr_result_free(r);
    free(r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "privgate: filter: cannot write the output: %s\n", strerror(errno));
        rc = PX_EXIT_FAIL;
    }

out:
    if (set != NULL) ctr_set_unref(set);
    px_buf_free(&body);
    for (size_t i = 0; i < nhdrs; i++)
        free((char *)hdrs[i].name.p);
    free(hdrs);
    free(o.hdr);
    return rc;
}
