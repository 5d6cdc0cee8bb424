/*
 * fast_loop() of filters/json.c, included there once per instruction set
 * (see "fast lanes" there): FAST_NAME is the function's name, FAST_ATTR its
 * attributes (a target), FAST_STR_END and FAST_NUMBER the string and
 * number scans it uses, FAST_SETUP what they need set up, FAST_REPORT
 * and FAST_REJECT f->report != NULL and f->cfg.reject_unlisted, constant
 * where the caller chose this function for a value of them. Not a
 * header of its own: it uses json.c's static functions and types.
 */
/*
 * The regular case, with the parser's position, state, top frame, pending
 * disposition and member name in local variables: whitespace, structural
 * bytes, plain member names and scalars lying whole in the chunk, under
 * keep, skip and filter dispositions. Everything else (a string with an
 * escape or a non-ASCII byte, a token cut by the chunk's end, a transformed
 * value, the root value, anything invalid, a decision that rejects the
 * document) returns to the general path at the start of that token, with
 * |f| as the general path would have left it there; the general path then
 * handles the token as it always did. So this loop changes no output,
 * report or error, and any chunking still gives the same result.
 *
 * Every byte written here is a copy of an input byte (a comma or colon may
 * come from a static string), so output is gathered as one pending span of
 * the input [ss, se), extended while the kept bytes are contiguous and
 * copied out when they stop being so (and before returning: the span may
 * point into the caller's chunk).
 */
FAST_ATTR static const char *FAST_NAME(struct flt_json *f, const char *p, const char *end)
{
    struct frame *t = top(f);
    enum state st = f->state;
    const char *ss = NULL, *se = NULL;     /* pending output span */
    const char *comma = ",", *colon = ":"; /* the last ',' and ':' read */
    const bool reject = FAST_REJECT;       /* f->cfg.reject_unlisted */
    const bool report = FAST_REPORT;       /* f->report != NULL */
    /* the pending value: f->disp, f->disp_node, f->pfx_key, and the member
     * name (f->kraw...) when |key_here| (a name read by this loop) */
    enum disp d = f->disp;
    const struct flt_node *dnode = f->disp_node;
    bool pfx = f->pfx_key;
    const char *kraw = f->kraw;
    size_t kraw_len = f->kraw_len;
    bool kid_named = f->kid_named, key_here = false;
    const char *q;
    unsigned char c;
    FAST_SETUP;

#define EMIT(ptr, n)                                                                               \
    do {                                                                                           \
        const char *e_ = (ptr);                                                                    \
        if (e_ != se) {                                                                            \
            if (se != ss) span_put(f, ss, (size_t)(se - ss));                                      \
            ss = e_;                                                                               \
        }                                                                                          \
        se = e_ + (n);                                                                             \
    } while (0)
#define LEAVE(s)                                                                                   \
    do {                                                                                           \
        st = (s);                                                                                  \
        goto out;                                                                                  \
    } while (0)
#define SKIP_WS(s)                                                                                 \
    do {                                                                                           \
        if (p == end) LEAVE(s);                                                                    \
        c = (unsigned char)*p;                                                                     \
        if (ws_tab[c]) {                                                                           \
            p = skip_ws(p + 1, end);                                                               \
            if (p == end) LEAVE(s);                                                                \
            c = (unsigned char)*p;                                                                 \
        }                                                                                          \
    } while (0)
    /* the member name as the general path keeps it, for the functions that
     * read it (pending_path(), frame_push()) */
#define SYNC_KEY()                                                                                 \
    do {                                                                                           \
        if (key_here) {                                                                            \
            f->kraw = kraw;                                                                        \
            f->kraw_len = kraw_len;                                                                \
            f->kname = kraw + 1;                                                                   \
            f->kname_len = kraw_len - 2;                                                           \
            f->key_ext = true;                                                                     \
            f->kid_named = kid_named;                                                              \
        }                                                                                          \
    } while (0)
    /* report_removed() of an unlisted value (the caller excluded reject) */
#define REPORT_REMOVED()                                                                           \
    do {                                                                                           \
        if (report) {                                                                              \
            SYNC_KEY();                                                                            \
            (void)report_removed(f, true);                                                         \
        }                                                                                          \
    } while (0)
    /* emit_prefix() */
#define PREFIX()                                                                                   \
    do {                                                                                           \
        if (t->emitted) EMIT(comma, 1);                                                            \
        t->emitted = true;                                                                         \
        if (pfx) {                                                                                 \
            EMIT(kraw, kraw_len);                                                                  \
            EMIT(colon, 1);                                                                        \
        }                                                                                          \
    } while (0)
    /* element_disp(), its rejection excluded by the caller */
#define ELEMENT_DISP()                                                                             \
    do {                                                                                           \
        pfx = false;                                                                               \
        if (t->node->elem) {                                                                       \
            dnode = t->node->elem;                                                                 \
            d = act_disp(dnode);                                                                   \
        } else {                                                                                   \
            d = D_SKIP;                                                                            \
            dnode = NULL;                                                                          \
            REPORT_REMOVED();                                                                      \
        }                                                                                          \
    } while (0)

    if (!t) return p; /* the root value */
    /* set by the first element_disp() or decide_member() of the root
     * container, and read only after one */
    f->root_value = false;
    if (t->mode == M_KEEP) {
        d = D_KEEP; /* what colon / ELEMENT_DISP() set in a KEEP frame */
        ss = se = p;
        switch (st) {
        case S_VALUE: goto keep_value;
        case S_ARR_FIRST: goto keep_arr_first;
        case S_OBJ_FIRST: goto keep_obj_first;
        case S_OBJ_KEY: goto keep_key;
        case S_COLON: goto keep_colon;
        case S_AFTER_VALUE: goto keep_after;
        default: return p;
        }
    }
    if (t->mode == M_SKIP) {
        d = D_SKIP; /* what colon / ELEMENT_DISP() set in a SKIP frame */
        switch (st) {
        case S_VALUE: goto skip_value;
        case S_ARR_FIRST: goto skip_arr_first;
        case S_OBJ_FIRST: goto skip_obj_first;
        case S_OBJ_KEY: goto skip_key;
        case S_COLON: goto skip_colon;
        case S_AFTER_VALUE: goto skip_after;
        default: return p;
        }
    }
    switch (st) {
    case S_VALUE: goto value;
    case S_ARR_FIRST: goto arr_first;
    case S_OBJ_FIRST: goto obj_first;
    case S_OBJ_KEY: goto obj_key;
    case S_COLON: goto colon;
    case S_AFTER_VALUE: goto after_value;
    default: return p;
    }

value:
    if (p == end) LEAVE(S_VALUE);
    c = (unsigned char)*p;
    if (d > D_FILTER) {
        if (d == D_XFORM) goto xform;
        LEAVE(S_VALUE);
    }
    switch (value_class[c]) {
    case VC_STR:
        q = FAST_STR_END(p + 1, end);
        if (!q) LEAVE(S_VALUE);
        q++;
        break;
    case VC_NUM:
        q = FAST_NUMBER(p, end);
        if (!q) LEAVE(S_VALUE);
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) LEAVE(S_VALUE);
        q = p + 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) LEAVE(S_VALUE);
        q = p + 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) LEAVE(S_VALUE);
        q = p + 4;
        break;
    case VC_OPEN: {
        enum mode m = d == D_KEEP ? M_KEEP : M_SKIP;
        if (f->depth == f->cfg.max_depth) LEAVE(S_VALUE);
        if (d == D_FILTER) {
            if (c == '{' ? dnode->has_members : dnode->elem != NULL) {
                m = M_FILTER;
            } else {
                if (reject) LEAVE(S_VALUE);
                REPORT_REMOVED();
            }
        }
        if (m == M_SKIP) {
            frame_push(f, (char)c, M_SKIP, NULL);
            t = top(f);
            d = D_SKIP;
            p++;
            if (c == '[') goto skip_arr_first;
            goto skip_obj_first;
        }
        PREFIX();
        EMIT(p, 1); /* the span now ends at p + 1, as the keep lane needs */
        if (m == M_KEEP) {
            frame_push(f, (char)c, M_KEEP, NULL);
            t = top(f);
            d = D_KEEP;
            p++;
            if (c == '[') goto keep_arr_first;
            goto keep_obj_first;
        }
        SYNC_KEY();
        frame_push(f, (char)c, M_FILTER, dnode);
        t = top(f);
        p++;
        if (c == '[') goto arr_first;
        goto obj_first;
    }
    case VC_WS: p = skip_ws(p + 1, end); goto value;
    default: LEAVE(S_VALUE);
    }
    if (d == D_KEEP) {
        PREFIX();
        EMIT(p, (size_t)(q - p));
    } else if (d == D_FILTER) { /* an ancestor met a scalar */
        if (reject) LEAVE(S_VALUE);
        REPORT_REMOVED();
    }
    p = q;
    goto after_value; /* t is not NULL: S_AFTER_VALUE */

xform:
    /* begin_value() to end_xform() for a plain string or a number whole in
     * the chunk: the same calls, in the same order, as the general path */
    if (c == '"') {
        q = FAST_STR_END(p + 1, end);
        if (!q) LEAVE(S_VALUE);
    } else if (c == '-' || is_digit(c)) {
        if (dnode->act.kind == FLT_ACT_YEAR) LEAVE(S_VALUE); /* not readable */
        q = FAST_NUMBER(p, end);
        if (!q) LEAVE(S_VALUE);
    } else {
        LEAVE(S_VALUE);
    }
    if (se != ss) span_put(f, ss, (size_t)(se - ss)); /* output stays in order */
    ss = se = NULL;
    SYNC_KEY();
    f->pfx_key = pfx;
    f->pfx_pending = true;
    flt_xform_begin(&f->xf, &dnode->act, f->cfg.key);
    if (c == '"') {
        if (q > p + 1) flt_xform_feed(&f->xf, p + 1, (size_t)(q - p - 1), xform_emit, f);
        q++;
    } else {
        flt_xform_feed(&f->xf, p, 1, xform_emit, f);
        if (q > p + 1) flt_xform_feed(&f->xf, p + 1, (size_t)(q - p - 1), xform_emit, f);
    }
    (void)end_xform(f, NULL, NULL);
    p = q;

after_value:
    if (p == end) LEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        if (t->kind == '{') {
            comma = p++;
            goto obj_key;
        }
        if (reject && !t->node->elem) LEAVE(S_AFTER_VALUE);
        comma = p++;
        ELEMENT_DISP();
        goto value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto close; /* '{' + 2 == '}' */
    if (!ws_tab[c]) LEAVE(S_AFTER_VALUE);
    p = skip_ws(p + 1, end);
    goto after_value;

close:
    /* pop() */
    f->depth--;
    EMIT(p, 1);
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    if (!t) LEAVE(S_END);
    goto after_value;

arr_first:
    SKIP_WS(S_ARR_FIRST);
    if (c == ']') goto close;
    if (reject && !t->node->elem) LEAVE(S_ARR_FIRST);
    ELEMENT_DISP();
    goto value;

obj_first:
    SKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto close;
    goto key;

obj_key:
    if (p == end) LEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
    if (c == '"') goto key_quote; /* the usual case first */
    if (ws_tab[c]) {
        p = skip_ws(p + 1, end);
        goto obj_key;
    }
key:
    if (c != '"') LEAVE(S_OBJ_KEY);
key_quote:
    q = FAST_STR_END(p + 1, end);
    if (!q) LEAVE(S_OBJ_KEY);
    q++;
    {
        /* as the general path's whole-name case, then decide_member() */
        size_t len = (size_t)(q - p) - 2;
        const struct flt_node *kid = NULL;
        kid_named = false;
        if (len <= FLT_NAME_MAX) { /* else key_overflow: no rule is that long */
            kid = kid_lookup(t->node, p + 1, len);
            kid_named = kid != NULL;
            if (!kid) kid = t->node->star;
        }
        if (!kid && reject) LEAVE(S_OBJ_KEY);
        kraw = p;
        kraw_len = len + 2;
        key_here = true;
        pfx = true;
        dnode = kid;
        if (kid) {
            d = act_disp(kid);
        } else {
            d = D_SKIP;
            if (report) {
                /* report_removed(), its common cases inline: the path is
                 * known to the memo and already in the list (and once
                 * found there, known to be there for the rest of the
                 * document: a list's set only grows), or new to the list
                 * (report_first()) */
                struct flt_pathlist *l = &f->report->removed;
                struct path_memo *m = NULL;
                if (t->ph_ok && l->nseen < FLT__SEEN_LIMIT)
                    m = memo_find(f, t->ph, t->plen, p + 1, len);
                if (m && m->rm_epoch == f->epoch) {
                    l->total++;
                } else if (m) {
                    size_t slot = flt__seen_probe(l, m->h ? m->h : 1);
                    if (flt__seen_used(l, slot)) {
                        m->rm_epoch = f->epoch;
                        l->total++;
                    } else if (!report_first(f, l, m, slot, p + 1, len)) {
                        SYNC_KEY();
                        (void)report_removed(f, true);
                    }
                } else {
                    SYNC_KEY();
                    (void)report_removed(f, true);
                }
            }
        }
    }
    p = q;

colon:
    if (p == end) LEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) LEAVE(S_COLON);
        p = skip_ws(p + 1, end);
        goto colon;
    }
    colon = p++;
    goto value;

    /*
     * The skip lane: inside a removed (SKIP) container, whose content is
     * validated and dropped. Same grammar and the same exits to the general
     * path as above, without dispositions, prefixes or output: every
     * container below a SKIP one is SKIP too, so only closing the outermost
     * one leaves the lane. |d| stays D_SKIP, as colon and ELEMENT_DISP()
     * would set it in a SKIP frame.
     */
skip_arr_first:
    SKIP_WS(S_ARR_FIRST);
    if (c == ']') goto skip_close;
    goto skip_value_c;

skip_obj_first:
    SKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto skip_close;
    goto skip_key_c;

skip_value:
    if (p == end) LEAVE(S_VALUE);
    c = (unsigned char)*p;
skip_value_c:
    switch (value_class[c]) {
    case VC_STR:
        q = FAST_STR_END(p + 1, end);
        if (!q) LEAVE(S_VALUE);
        p = q + 1;
        break;
    case VC_NUM:
        q = FAST_NUMBER(p, end);
        if (!q) LEAVE(S_VALUE);
        p = q;
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) LEAVE(S_VALUE);
        p += 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) LEAVE(S_VALUE);
        p += 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) LEAVE(S_VALUE);
        p += 4;
        break;
    case VC_OPEN:
        if (f->depth == f->cfg.max_depth) LEAVE(S_VALUE);
        frame_push(f, (char)c, M_SKIP, NULL);
        t = top(f);
        p++;
        if (c == '[') goto skip_arr_first;
        goto skip_obj_first;
    case VC_WS: p = skip_ws(p + 1, end); goto skip_value;
    default: LEAVE(S_VALUE);
    }

skip_after:
    if (p == end) LEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        p++;
        if (t->kind == '{') goto skip_key;
        goto skip_value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto skip_close;
    if (!ws_tab[c]) LEAVE(S_AFTER_VALUE);
    p = skip_ws(p + 1, end);
    goto skip_after;

skip_close:
    f->depth--;
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    if (!t) LEAVE(S_END);
    if (t->mode == M_SKIP) goto skip_after;
    goto after_value;

skip_key:
    if (p == end) LEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
skip_key_c:
    if (c != '"') {
        if (!ws_tab[c]) LEAVE(S_OBJ_KEY);
        p = skip_ws(p + 1, end);
        goto skip_key;
    }
    q = FAST_STR_END(p + 1, end);
    if (!q) LEAVE(S_OBJ_KEY);
    p = q + 1;

skip_colon:
    if (p == end) LEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) LEAVE(S_COLON);
        p = skip_ws(p + 1, end);
        goto skip_colon;
    }
    p++;
    goto skip_value;

    /*
     * The keep lane: inside a kept (KEEP) container, copied whole minus
     * whitespace. The same grammar as the skip lane, with the output span
     * [ss, se) extended over every byte read (se = p when leaving) and cut
     * around whitespace. |d| stays D_KEEP, as colon and ELEMENT_DISP() would
     * set it in a KEEP frame. Every container below a KEEP one is KEEP.
     */
#define KLEAVE(s)                                                                                  \
    do {                                                                                           \
        se = p;                                                                                    \
        LEAVE(s);                                                                                  \
    } while (0)
    /* whitespace at p: the span ends before it, a new one starts after it */
#define KWS()                                                                                      \
    do {                                                                                           \
        se = p;                                                                                    \
        p = skip_ws(p + 1, end);                                                                   \
        if (se != ss) span_put(f, ss, (size_t)(se - ss));                                          \
        ss = se = p;                                                                               \
    } while (0)
#define KSKIP_WS(s)                                                                                \
    do {                                                                                           \
        if (p == end) KLEAVE(s);                                                                   \
        c = (unsigned char)*p;                                                                     \
        if (ws_tab[c]) {                                                                           \
            KWS();                                                                                 \
            if (p == end) KLEAVE(s);                                                               \
            c = (unsigned char)*p;                                                                 \
        }                                                                                          \
    } while (0)
keep_arr_first:
    KSKIP_WS(S_ARR_FIRST);
    if (c == ']') goto keep_close;
    goto keep_value_c;

keep_obj_first:
    KSKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto keep_close;
    goto keep_key_c;

keep_value:
    if (p == end) KLEAVE(S_VALUE);
    c = (unsigned char)*p;
keep_value_c:
    switch (value_class[c]) {
    case VC_STR:
        q = FAST_STR_END(p + 1, end);
        if (!q) KLEAVE(S_VALUE);
        p = q + 1;
        break;
    case VC_NUM:
        q = FAST_NUMBER(p, end);
        if (!q) KLEAVE(S_VALUE);
        p = q;
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) KLEAVE(S_VALUE);
        p += 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) KLEAVE(S_VALUE);
        p += 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) KLEAVE(S_VALUE);
        p += 4;
        break;
    case VC_OPEN:
        if (f->depth == f->cfg.max_depth) KLEAVE(S_VALUE);
        frame_push(f, (char)c, M_KEEP, NULL);
        t = top(f);
        p++;
        if (c == '[') goto keep_arr_first;
        goto keep_obj_first;
    case VC_WS: KWS(); goto keep_value;
    default: KLEAVE(S_VALUE);
    }

keep_after:
    if (p == end) KLEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        p++;
        if (t->kind == '{') goto keep_key;
        goto keep_value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto keep_close;
    if (!ws_tab[c]) KLEAVE(S_AFTER_VALUE);
    KWS();
    goto keep_after;

keep_close:
    f->depth--;
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    se = p;
    if (!t) LEAVE(S_END);
    if (t->mode == M_KEEP) goto keep_after;
    goto after_value;

keep_key:
    if (p == end) KLEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
keep_key_c:
    if (c != '"') {
        if (!ws_tab[c]) KLEAVE(S_OBJ_KEY);
        KWS();
        goto keep_key;
    }
    q = FAST_STR_END(p + 1, end);
    if (!q) KLEAVE(S_OBJ_KEY);
    p = q + 1;

keep_colon:
    if (p == end) KLEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) KLEAVE(S_COLON);
        KWS();
        goto keep_colon;
    }
    p++;
    goto keep_value;
#undef KLEAVE
#undef KWS
#undef KSKIP_WS

out:
    if (se != ss) span_put(f, ss, (size_t)(se - ss));
    SYNC_KEY();
    f->disp = d;
    f->disp_node = dnode;
    f->pfx_key = pfx;
    f->state = st;
    return p;
#undef EMIT
#undef LEAVE
#undef SKIP_WS
#undef SYNC_KEY
#undef REPORT_REMOVED
#undef PREFIX
#undef ELEMENT_DISP
}
