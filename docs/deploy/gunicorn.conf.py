"""gunicorn settings for the portal's web processes: `gunicorn portal.wsgi -c gunicorn.conf.py`.

Sized for the machine it runs on: two processes per core, each with a few threads (a request
mostly waits on PostgreSQL and Redis). The benchmark (`make bench`) uses this file as it is, on
2 cores: 4 processes x 4 threads. Each thread holds one persistent PostgreSQL connection
(DJANGO_CONN_MAX_AGE), so processes x threads x machines must stay under what PgBouncer (or
max_connections) allows. See docs/scaling.md.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
# Recycle processes now and then (a leak never grows for long); jitter so they do not all
# restart at once. A process levels off at about 100 MB once its caches are warm (`make bench`,
# about 100,000 requests). At 20,000, processes restarted inside the bench's measured feed and
# acknowledge runs (a minute or two apart at shift-change rates), and the requests queued behind
# a restart set the p99: the feed's was 110-143 ms in those runs, 61-92 ms in the runs since.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 100000))
max_requests_jitter = max_requests // 10
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Load the app once in the master: faster restarts, shared memory pages. Database connections
# are opened lazily per thread, never inherited across the fork.
preload_app = True
# Behind the load balancer: it terminates TLS and sets X-Forwarded-Proto, and appends the
# client's address to X-Forwarded-For (the portal reads it with TRUSTED_PROXY_COUNT=1; gunicorn's
# access log still shows the balancer's address).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def post_worker_init(worker):
    """Open the Celery broker connection at boot: the first task a process queues otherwise
    spends about 0.7 s setting it up, inside somebody's publish request."""
    from portal.celery import app

    try:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)
            for queue in app.amqp.queues.values():
                queue(producer.channel).declare()
    except Exception as error:  # noqa: BLE001 - a broker outage must not stop the web
        worker.log.warning("could not warm the broker connection: %s", error)
