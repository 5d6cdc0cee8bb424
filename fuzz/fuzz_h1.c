/*
 * libFuzzer target for the gateway's HTTP/1.1 downstream (proxy/h1down.c
 * and everything a request reaches: routing, decide, filters, the
 * HTTP/1.1 upstream client), black-box and in-process (fuzz/gwfuzz.c).
 *
 * Input: the bytes a client sends on one cleartext connection (one or
 * more pipelined requests, or garbage); the connection is then
 * half-closed and read until the gateway closes it.
 *
 * Properties:
 *  1. no crash, no sanitizer report, in the gateway or here;
 *  2. the gateway closes every connection once the client has sent
 *     everything (within 20 s; header and idle timeouts are 1-2 s);
 *  3. file descriptors do not grow (checked every 256 inputs);
 *  4. oracle: the word "canary" in any unlisted place of a request for
 *     provider `p` never reaches its upstream (checked by the fake
 *     upstream, see gwfuzz.c);
 *  5. a response, if any, starts with "HTTP/1.1 " (h2 prior knowledge
 *     input is answered with HTTP/2 frames and skipped).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz/common.h"
#include "fuzz/gwfuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gwf_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[16384];
    static const char preface[] = "PRI * HTTP/2.0";
    size_t got = gwf_exchange(data, size, resp, sizeof resp, NULL, NULL);
    bool h2 = size >= 3 && memcmp(data, preface, 3) == 0;
    if (got >= 9 && !h2 && memcmp(resp, "HTTP/1.1 ", 9) != 0) {
        fz_dump("request", (const char *)data, size);
        fz_dump("response", (const char *)resp, got);
        fz_fail("an HTTP/1.1 answer that does not start with HTTP/1.1");
    }
    gwf_check_fds();
    return 0;
}
