/*
 * privgate proxy: the gateway (`privgate serve`, SPEC 3, 5, 7).
 */
#ifndef PRIVGATE_PROXY_SERVE_H
#define PRIVGATE_PROXY_SERVE_H

/* Runs the gateway with the config at |config_path| (and the contracts it
 * names) until SIGTERM or SIGINT has drained it. Start-up errors (invalid
 * config or contract, port in use, bad certificate) print one line on
 * stderr. Returns the exit status: 0 after a clean shutdown, 1 on a
 * start-up error. */
int px_serve(const char *config_path);

#endif
