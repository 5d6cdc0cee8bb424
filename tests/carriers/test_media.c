/* tests for filters/media.c: content types and encodings (SPEC 4.2, 4.4). */
#include "helpers.h"

struct mcase {
    const char *v;
    int rc;
    enum flt_media m;
};

static const struct mcase cases[] = {
    {"application/json", 0, FLT_MEDIA_JSON},
    {"APPLICATION/JSON", 0, FLT_MEDIA_JSON},
    {"Application/Json; Charset=UTF-8", 0, FLT_MEDIA_JSON},
    {"application/json;charset=utf-8", 0, FLT_MEDIA_JSON},
    {"application/json ; charset=\"utf-8\"", 0, FLT_MEDIA_JSON},
    {"application/json\t;\tcharset=\"UTF-8\"", 0, FLT_MEDIA_JSON},
    {"application/json; charset=\"utf\\-8\"", 0, FLT_MEDIA_JSON},
    {"application/json;", 0, FLT_MEDIA_JSON},
    {"application/json;;", 0, FLT_MEDIA_JSON},
    {"application/json; foo=bar; charset=utf-8", 0, FLT_MEDIA_JSON},
    {"application/json; foo=\"a;b\"", 0, FLT_MEDIA_JSON},
    {" application/json ", 0, FLT_MEDIA_JSON},
    {"application/vnd.api+json", 0, FLT_MEDIA_JSON},
    {"application/problem+JSON; charset=utf-8", 0, FLT_MEDIA_JSON},
    {"application/x-ndjson", 0, FLT_MEDIA_NDJSON},
    {"application/jsonl", 0, FLT_MEDIA_NDJSON},
    {"Application/X-NDJSON; charset=utf-8", 0, FLT_MEDIA_NDJSON},
    {"application/x-www-form-urlencoded", 0, FLT_MEDIA_FORM},
    {"application/x-www-form-urlencoded; charset=UTF-8", 0, FLT_MEDIA_FORM},
    {"text/plain", 0, FLT_MEDIA_OTHER},
    {"text/json", 0, FLT_MEDIA_OTHER},
    {"application/+json", 0, FLT_MEDIA_OTHER},
    {"application/jsonx", 0, FLT_MEDIA_OTHER},
    {"application/xjson", 0, FLT_MEDIA_OTHER},
    {"multipart/form-data; boundary=x", 0, FLT_MEDIA_OTHER},
    {"application/octet-stream", 0, FLT_MEDIA_OTHER},
    {"text/plain; charset=iso-8859-1", 0, FLT_MEDIA_OTHER},
    /* refused */
    {"application/json; charset=iso-8859-1", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=utf8", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=\"utf-16\"", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=\"utf-8 \"", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=utf-8; charset=latin1", FLT_E_MEDIA_TYPE, 0},
    {"application/x-www-form-urlencoded; charset=windows-1252", FLT_E_MEDIA_TYPE, 0},
    {"application/x-ndjson; charset=us-ascii", FLT_E_MEDIA_TYPE, 0},
    {"", FLT_E_MEDIA_TYPE, 0},
    {"  ", FLT_E_MEDIA_TYPE, 0},
    {"application", FLT_E_MEDIA_TYPE, 0},
    {"application/", FLT_E_MEDIA_TYPE, 0},
    {"/json", FLT_E_MEDIA_TYPE, 0},
    {"application/json charset=utf-8", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset = utf-8", FLT_E_MEDIA_TYPE, 0},
    {"application/json; charset=\"utf-8", FLT_E_MEDIA_TYPE, 0},
    {"application/json, text/plain", FLT_E_MEDIA_TYPE, 0},
    {"application/json; a=b c", FLT_E_MEDIA_TYPE, 0},
    {"application /json", FLT_E_MEDIA_TYPE, 0},
    {"appli\001cation/json", FLT_E_MEDIA_TYPE, 0},
};

Test(media, table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum flt_media m = (enum flt_media)99;
        int rc = flt_media_parse(cases[i].v, strlen(cases[i].v), &m);
        cr_assert_eq(rc, cases[i].rc, "[%s]: rc %d want %d", cases[i].v, rc, cases[i].rc);
        if (rc == 0)
            cr_assert_eq(m, cases[i].m, "[%s]: media %d want %d", cases[i].v, m, cases[i].m);
    }
}

Test(media, nul_and_null)
{
    enum flt_media m;
    cr_assert_eq(flt_media_parse("application/json\0x", 18, &m), FLT_E_MEDIA_TYPE);
    cr_assert_eq(flt_media_parse(NULL, 0, &m), FLT_E_MEDIA_TYPE);
}

Test(encoding, table)
{
    struct {
        const char *v;
        int rc;
        enum flt_encoding e;
    } c[] = {
        {"identity", 0, FLT_ENC_IDENTITY}, {"gzip", 0, FLT_ENC_GZIP},
        {"GZIP", 0, FLT_ENC_GZIP},         {"x-gzip", 0, FLT_ENC_GZIP},
        {" gzip ", 0, FLT_ENC_GZIP},       {"Deflate", 0, FLT_ENC_DEFLATE},
        {"br", FLT_E_ENCODING, 0},         {"compress", FLT_E_ENCODING, 0},
        {"zstd", FLT_E_ENCODING, 0},       {"gzip, gzip", FLT_E_ENCODING, 0},
        {"gzip;q=1", FLT_E_ENCODING, 0},   {"", FLT_E_ENCODING, 0},
        {"gzipx", FLT_E_ENCODING, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        enum flt_encoding e = (enum flt_encoding)99;
        int rc = flt_encoding_parse(c[i].v, strlen(c[i].v), &e);
        cr_assert_eq(rc, c[i].rc, "[%s]", c[i].v);
        if (rc == 0) cr_assert_eq(e, c[i].e, "[%s]", c[i].v);
    }
}
