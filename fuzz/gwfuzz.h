/*
 * Black-box in-process harness for the gateway fuzz targets (fuzz_h1,
 * fuzz_h2): the proxy sources are linked in unchanged, px_serve() runs in a
 * background thread with a generated configuration, and each input is sent
 * over a fresh loopback connection.
 */
#ifndef PRIVGATE_FUZZ_GWFUZZ_H
#define PRIVGATE_FUZZ_GWFUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts (once per process) two fake HTTP/1.1 upstreams and the gateway in
 * background threads; aborts if the gateway does not come up. */
void gwf_start(void);

/* Whether the client is done with what the gateway sent so far (|resp|,
 * |got| bytes): then the connection is half-closed. */
typedef bool (*gwf_done_fn)(const uint8_t *resp, size_t got, void *ud);

/* Sends |n| bytes on a new connection to the gateway's cleartext listener,
 * then half-closes: at once when |done| is NULL, else once |done| says so
 * or nothing arrived for 100 ms (at most 3 s); reads until the gateway
 * closes (bounded), closes. Returns the number of response bytes read
 * (into |resp| up to |cap|). Aborts (a finding) when the gateway keeps the
 * connection open 20 s after the half-close. */
size_t gwf_exchange(const uint8_t *p, size_t n, uint8_t *resp, size_t cap, gwf_done_fn done,
                    void *ud);

/* Every so many inputs: checks that the process's open file descriptors
 * do not grow without bound (a connection the gateway never closes). */
void gwf_check_fds(void);

#endif
