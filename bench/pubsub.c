/* pubsub.c - the libzmq side of swift-zmtp's publish/subscribe benchmarks.
 *
 * Written for this project. Three roles, mirrored by `zmtp bench ps-pub|ps-sub|ps-match`
 * (same arguments, same RESULT line; bench/run-pubsub.sh runs them, BENCHMARKS.md explains):
 *
 *   pubsub pub   ENDPOINT SIZE COUNT SUBSCRIBERS [--topics N] [--timeout S]
 *       XPUB (verbose, no-drop) binds ENDPOINT, waits until SUBSCRIBERS subscribers have each
 *       subscribed N topics (N-1 fillers "B.000000".. then "B"), then publishes COUNT messages of SIZE
 *       bytes ("B." then 'x'), blocking while a subscriber's queue is full. Stays until the
 *       subscribers disconnect. Prints nothing.
 *   pubsub sub   ENDPOINT SIZE COUNT SUBSCRIBERS [--topics N] [--timeout S]
 *       SUBSCRIBERS SUB sockets connect and subscribe as above; each receives COUNT messages. The
 *       clock starts at the first message and stops when every subscriber has all of them.
 *       RESULT test=pubsub ... msgs_per_s=(COUNT-1)/elapsed deliveries_per_s=SUBSCRIBERS*that
 *   pubsub match ENDPOINT SIZE COUNT TOPICS [--timeout S]
 *       XPUB binds, one SUB in the same process subscribes TOPICS fillers; then COUNT sends of a
 *       message that matches none of them are timed: the cost of filtering one message.
 *       RESULT test=match ... ns_per_msg=...
 */
#define _GNU_SOURCE
#include <zmq.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void die (const char *what)
{
    fprintf (stderr, "pubsub: ERROR: %s: %s\n", what, zmq_strerror (zmq_errno ()));
    exit (1);
}

static int check (int rc, const char *what)
{
    if (rc == -1)
        die (what);
    return rc;
}

static uint64_t now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void on_alarm (int sig)
{
    (void) sig;
    static const char m[] = "pubsub: ERROR: timeout\n";
    ssize_t w = write (2, m, sizeof m - 1);
    (void) w;
    _exit (124);
}

static const char *transport (const char *endpoint)
{
    return strncmp (endpoint, "ipc://", 6) == 0 ? "ipc" : "tcp";
}

/* Subscribes like every subscriber of these benchmarks: N-1 fillers, then "B" (so that the publisher
 * knows all N are installed once it sees "B"). libzmq drops subscriptions that do not fit the SUB's
 * send high-water mark, so it is lifted for the subscribing (the data flows the other way). */
static void *subscriber (void *ctx, const char *endpoint)
{
    int zero = 0;
    void *sub = zmq_socket (ctx, ZMQ_SUB);
    check (zmq_setsockopt (sub, ZMQ_SNDHWM, &zero, sizeof zero), "sndhwm");
    check (zmq_setsockopt (sub, ZMQ_LINGER, &zero, sizeof zero), "linger");
    check (zmq_connect (sub, endpoint), "connect");
    return sub;
}

static void subscribe_all (void *sub, int topics)
{
    char filler[16];
    for (int i = 0; i < topics - 1; i++) {
        snprintf (filler, sizeof filler, "B.%06d", i);
        check (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, filler, strlen (filler)), "subscribe");
    }
}

static void fill_payload (char *buffer, size_t size)
{
    memset (buffer, 'x', size);
    if (size > 0)
        buffer[0] = 'B';
    if (size > 1)
        buffer[1] = '.';
}

int main (int argc, char **argv)
{
    int timeout = 120, topics = 1;
    char *positional[5];
    int count_positional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atoi (argv[++i]);
        else if (strcmp (argv[i], "--topics") == 0 && i + 1 < argc)
            topics = atoi (argv[++i]);
        else if (strncmp (argv[i], "--", 2) == 0) {
            fprintf (stderr, "pubsub: unknown option %s\n", argv[i]);
            return 2;
        } else if (count_positional < 5)
            positional[count_positional++] = argv[i];
        else
            return 2;
    }
    if (count_positional != 5 || topics < 1) {
        fprintf (stderr, "usage: pubsub pub|sub|match ENDPOINT SIZE COUNT SUBSCRIBERS|TOPICS [--topics N] [--timeout S]\n");
        return 2;
    }
    const char *role = positional[0], *endpoint = positional[1];
    size_t size = (size_t) atol (positional[2]);
    long count = atol (positional[3]);
    int fourth = atoi (positional[4]);
    signal (SIGALRM, on_alarm);
    alarm ((unsigned) timeout);
    char *payload = malloc (size > 0 ? size : 1);
    fill_payload (payload, size);
    void *ctx = zmq_ctx_new ();

    if (strcmp (role, "pub") == 0) {
        int subscribers = fourth, one = 1;
        void *xpub = zmq_socket (ctx, ZMQ_XPUB);
        check (zmq_setsockopt (xpub, ZMQ_XPUB_VERBOSE, &one, sizeof one), "verbose");
        check (zmq_setsockopt (xpub, ZMQ_XPUB_NODROP, &one, sizeof one), "nodrop");
        check (zmq_bind (xpub, endpoint), "bind");
        char notice[64];
        for (int ready = 0; ready < subscribers;) {
            int n = check (zmq_recv (xpub, notice, sizeof notice, 0), "recv subscription");
            if (n == 2 && notice[0] == 1 && notice[1] == 'B')
                ready++;
        }
        for (long i = 0; i < count; i++)
            check (zmq_send (xpub, payload, size, 0), "send");
        /* Stay until every subscriber has gone: "B" is cancelled when the last one leaves. */
        for (;;) {
            int n = check (zmq_recv (xpub, notice, sizeof notice, 0), "recv cancellation");
            if (n == 2 && notice[0] == 0 && notice[1] == 'B')
                break;
        }
        zmq_close (xpub);
    } else if (strcmp (role, "sub") == 0) {
        int subscribers = fourth;
        void **subs = calloc ((size_t) subscribers, sizeof *subs);
        long *received = calloc ((size_t) subscribers, sizeof *received);
        zmq_pollitem_t *items = calloc ((size_t) subscribers, sizeof *items);
        for (int s = 0; s < subscribers; s++) {
            subs[s] = subscriber (ctx, endpoint);
            subscribe_all (subs[s], topics);
            check (zmq_setsockopt (subs[s], ZMQ_SUBSCRIBE, "B", 1), "subscribe");
            items[s].socket = subs[s];
            items[s].events = ZMQ_POLLIN;
        }
        char *buffer = malloc (size + 1);
        int done = 0;
        uint64_t start = 0;
        while (done < subscribers) {
            check (zmq_poll (items, subscribers, -1), "poll");
            for (int s = 0; s < subscribers; s++) {
                if (!(items[s].revents & ZMQ_POLLIN) || received[s] == count)
                    continue;
                int n;
                while (received[s] < count && (n = zmq_recv (subs[s], buffer, size + 1, ZMQ_DONTWAIT)) >= 0) {
                    if ((size_t) n != size) {
                        fprintf (stderr, "pubsub: ERROR: expected %zu bytes, got %d\n", size, n);
                        return 1;
                    }
                    if (start == 0)
                        start = now_ns ();
                    if (++received[s] == count)
                        done++;
                }
            }
        }
        double elapsed = (double) (now_ns () - start) / 1e9;
        double rate = (double) (count - 1) / elapsed;
        printf ("RESULT test=pubsub impl=libzmq-%d.%d.%d transport=%s mech=null size=%zu count=%ld subscribers=%d "
                "topics=%d elapsed_s=%.6f msgs_per_s=%.0f deliveries_per_s=%.0f\n",
                ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH, transport (endpoint), size, count,
                subscribers, topics * subscribers, elapsed, rate, rate * subscribers);
        fflush (stdout);
        for (int s = 0; s < subscribers; s++)
            zmq_close (subs[s]);
    } else if (strcmp (role, "match") == 0) {
        int fillers = fourth, one = 1, zero = 0;
        void *xpub = zmq_socket (ctx, ZMQ_XPUB);
        check (zmq_setsockopt (xpub, ZMQ_XPUB_VERBOSE, &one, sizeof one), "verbose");
        check (zmq_setsockopt (xpub, ZMQ_LINGER, &zero, sizeof zero), "linger");
        check (zmq_bind (xpub, endpoint), "bind");
        void *sub = subscriber (ctx, endpoint);
        subscribe_all (sub, fillers + 1);
        char notice[64];
        for (int seen = 0; seen < fillers;)
            if (check (zmq_recv (xpub, notice, sizeof notice, 0), "recv subscription") > 0 && notice[0] == 1)
                seen++;
        /* "B.x...": walks the filler topics' common prefix "B." and matches none of them. */
        uint64_t start = now_ns ();
        for (long i = 0; i < count; i++)
            check (zmq_send (xpub, payload, size, 0), "send");
        double elapsed = (double) (now_ns () - start) / 1e9;
        printf ("RESULT test=match impl=libzmq-%d.%d.%d transport=%s mech=null size=%zu count=%ld topics=%d "
                "elapsed_s=%.6f msgs_per_s=%.0f ns_per_msg=%.1f\n",
                ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH, transport (endpoint), size, count, fillers,
                elapsed, (double) count / elapsed, elapsed * 1e9 / (double) count);
        fflush (stdout);
        zmq_close (sub);
        zmq_close (xpub);
    } else {
        fprintf (stderr, "pubsub: unknown role %s\n", role);
        return 2;
    }
    zmq_ctx_term (ctx);
    free (payload);
    return 0;
}
