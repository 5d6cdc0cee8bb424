/* px_buf_json_str (proxy/cli_util.c): the JSON string writer of --explain. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "proxy/cli.h"

static void expect_json(const char *in, size_t n, const char *want)
{
    struct px_buf b = {0};
    px_buf_json_str(&b, in, n);
    cr_assert(!b.failed);
    cr_expect_eq(b.len, strlen(want), "length %zu, want %zu", b.len, strlen(want));
    cr_expect(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0, "got %.*s want %s",
              (int)b.len, b.p, want);
    px_buf_free(&b);
}

Test(json_str, plain_and_empty)
{
    expect_json("", 0, "\"\"");
    expect_json("order_id", 8, "\"order_id\"");
}

Test(json_str, quotes_and_backslashes)
{
    expect_json("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
}

Test(json_str, control_characters)
{
    expect_json("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    expect_json("a\0b", 3, "\"a\\u0000b\"");
}

Test(json_str, every_control_character_round_trips)
{
    for (int c = 0; c < 0x20; c++) {
        char in[3] = {'x', (char)c, 'y'};
        struct px_buf b = {0};
        px_buf_json_str(&b, in, 3);
        json_error_t e;
        json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        cr_assert(j != NULL, "0x%02x: %s", c, e.text);
        cr_expect_eq(json_string_length(j), 3);
        cr_expect(memcmp(json_string_value(j), in, 3) == 0, "0x%02x", c);
        json_decref(j);
        px_buf_free(&b);
    }
}

Test(json_str, utf8_passes_through)
{
    expect_json("\xc3\xa9", 2, "\"\xc3\xa9\"");
    expect_json("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");
    expect_json("\xf0\x9f\x93\xa6", 4, "\"\xf0\x9f\x93\xa6\"");
    expect_json("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

Test(json_str, invalid_utf8_becomes_replacement)
{
    expect_json("\xff", 1, "\"\\ufffd\"");
    expect_json("a\xc3", 2, "\"a\\ufffd\"");          /* truncated */
    expect_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\""); /* overlong */
    expect_json("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    expect_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    expect_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    expect_json("\x80x", 2, "\"\\ufffdx\"");
}

Test(json_str, long_input_grows_the_buffer)
{
    static char in[100000];
    memset(in, '"', sizeof in);
    struct px_buf b = {0};
    px_buf_json_str(&b, in, sizeof in);
    cr_assert(!b.failed);
    cr_expect_eq(b.len, 2 * sizeof in + 2);
    px_buf_free(&b);
}
