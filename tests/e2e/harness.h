/*
 * End-to-end test harness: starts the real `privgate` binary and the demo
 * partner (as recording upstream) on 127.0.0.1 with free ports, drives
 * them with curl and h2load, and stops them by PID. Nothing sleeps to
 * synchronise: we wait for a port file or for a port to accept.
 */
#ifndef PRIVGATE_TESTS_E2E_HARNESS_H
#define PRIVGATE_TESTS_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct e2e {
    char dir[256];      /* temp dir: config, contracts, logs */
    char privgate[512]; /* binaries */
    char partner[512];
    char source[512]; /* PRIVGATE_SOURCE_ROOT */
    pid_t up_pid, gw_pid;
    int up_port, gw_port, gw_tls_port;
    char record[320]; /* upstream's record file */
    char up_ca[320];  /* TLS partner's certificate */
    char gw_err[320]; /* gateway stderr */
    char audit[320];
};

/* A response as curl saw it. */
struct e2e_resp {
    int status; /* 0 when curl failed */
    char *body; /* NUL-terminated */
    size_t len;
    char *headers; /* raw header block, lower-cased names */
    int curl_rc;
};

void e2e_init(struct e2e *e);
void e2e_fini(struct e2e *e);

/* Path of |name| inside the test dir (static ring of buffers). */
const char *e2e_path(struct e2e *e, const char *name);
void e2e_write(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *e2e_read(const char *path, size_t *len);
/* Lines in a file (0 when absent). */
size_t e2e_count_lines(const char *path);

pid_t e2e_spawn(char *const argv[], const char *out_path, const char *err_path);
bool e2e_wait_file(const char *path, int timeout_ms);
bool e2e_wait_port(int port, int timeout_ms);
int e2e_free_port(void);
/* SIGTERM (or |sig|) then wait; returns the exit status, 128+signal, or
 * -1 on timeout (then SIGKILL). */
int e2e_stop(pid_t pid, int sig, int timeout_ms);
/* A "Vm..." line of /proc/PID/status in KiB (|key| without the colon,
 * e.g. "VmHWM"); -1 when the process or the line is gone. */
long e2e_proc_kb(pid_t pid, const char *key);
/* A self-signed P-256 certificate for |cn| (SAN localhost, 127.0.0.1), 2
 * days, written with openssl to |key_path| and |crt_path|. */
void e2e_self_signed(const char *key_path, const char *crt_path, const char *cn);
/* Runs argv to completion; stdout into |out| (malloc'd, may be NULL). */
int e2e_run(char *const argv[], const char *stdin_path, char **out, size_t *outlen);

/* Starts the demo partner. |mode|: "h2c" or "tls"; |extra| more args
 * (NULL-terminated list, may be NULL). Sets up_port, record, up_ca. */
void e2e_start_partner(struct e2e *e, const char *mode, const char *const *extra);
/* Writes privgate.yaml with |extra_yaml| appended (limits etc.) and starts
 * the gateway; waits until it accepts. Returns false if it exited. */
bool e2e_start_gateway(struct e2e *e, const char *extra_yaml);
/* Same, with a second, TLS listener whose `tls:` mapping is |tls_yaml|
 * (lines indented by 6 spaces); its port is gw_tls_port. */
bool e2e_start_gateway_tls(struct e2e *e, const char *extra_yaml, const char *tls_yaml);
/* Writes contracts/<name>.yaml; "@UP@" in |yaml| becomes the partner's
 * http URL with insecure: true set by the caller's text. */
void e2e_contract(struct e2e *e, const char *name, const char *yaml);

/* curl --http2-prior-knowledge to the gateway. |hdrs| NULL-terminated
 * "name: value" list; |body| may be NULL; |body_file| overrides |body|. */
void e2e_curl(struct e2e *e, const char *method, const char *path, const char *const *hdrs,
              const char *body, const char *body_file, struct e2e_resp *r);
void e2e_resp_free(struct e2e_resp *r);
/* Value of response header |name| (lower case) or NULL (static buffer). */
const char *e2e_header(const struct e2e_resp *r, const char *name);

#endif
