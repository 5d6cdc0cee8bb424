/*
 * privgate contracts: the sharing register (SPEC section 8) — from a loaded
 * rule set alone, who receives which field, for which purpose, with which
 * action and retention. Written by `privgate register`.
 *
 * The output is deterministic: providers sorted by id (byte order), routes
 * and body fields in contract order, path parameters in path order, query
 * parameters and headers sorted by name. It holds no timestamp, no file
 * name and no secret (neither the upstream credential nor the HMAC key), so
 * the same contracts always give the same bytes.
 *
 * Per route the "rows" are, in this order: path parameters (carrier
 * "param", action keep or hash), query parameters ("query", keep), the
 * extra headers of the contract and the route ("header", keep), then the
 * body: one row per `fields:` entry ("body", the field's action), or for an
 * opaque body one row with field "$" and action "opaque". Actions are
 * written "keep", "hash", "mask keep_last N", "mask keep_first N",
 * "truncate N", "year".
 */
#ifndef PRIVGATE_CONTRACTS_REGISTER_H
#define PRIVGATE_CONTRACTS_REGISTER_H

#include <stdio.h>

#include "contracts/contracts.h"

enum ctr_register_format {
    /* Markdown (CommonMark + GFM tables): an introduction and legend, a
     * summary table of every provider, then per provider a heading, its
     * description, a table of its properties and a table per route. */
    CTR_REGISTER_MD = 0,
    /* CSV (RFC 4180: CRLF line ends, fields quoted when they contain a
     * comma, a quote, CR or LF, quotes doubled): a header line, then one
     * record per row (see above); a route without any row gets one record
     * with empty carrier, field, action and category. Columns: provider,
     * purposes (';'-separated), method, path, carrier, field, action,
     * category, retention, upstream_host. */
    CTR_REGISTER_CSV,
    /* JSON: one object {"providers": [...]}, pretty-printed as `jq .`
     * prints it (two-space indent), ending with a newline. Key order is
     * fixed; see docs/CLI.md for the schema. */
    CTR_REGISTER_JSON,
};

/* Parses "md" (or "markdown"), "csv", "json" into |*fmt|. Returns 0, or -1
 * for any other name (|*fmt| untouched). */
int ctr_register_format_parse(const char *name, enum ctr_register_format *fmt);

/*
 * Writes the register of every contract of |s| to |out| in format |fmt|.
 * |s| is only read; |out| is the caller's and is not closed (but is
 * flushed). Returns 0, or -1 with errno set when a write failed (ferror)
 * or memory ran out (ENOMEM); part of the register may have been written.
 */
int ctr_register_write(const struct ctr_set *s, enum ctr_register_format fmt, FILE *out);

#endif
