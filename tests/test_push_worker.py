"""Web Push end to end with a real Celery worker on Redis and PostgreSQL: publishing an
"Officer safety - immediate" order reaches each device once, through the after-commit fan-out,
and a push service answering 503 is retried with backoff until it accepts, once."""

import pytest

from bulletins.models import PushDelivery
from tests.factories import published_bulletin
from tests.test_push import device
from tests.test_push import service as service  # noqa: F401 - the fixture
from tests.test_worker import CeleryProcesses, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]


@pytest.fixture
def worker(tmp_path, service, settings):  # noqa: F811
    from portal.celery import app as celery_app

    celery_app.control.purge()
    processes = CeleryProcesses(tmp_path)
    processes.env.update(
        VAPID_PUBLIC_KEY=settings.VAPID_PUBLIC_KEY,
        VAPID_PRIVATE_KEY=settings.VAPID_PRIVATE_KEY,
        VAPID_SUBJECT=settings.VAPID_SUBJECT,
        PUSH_SERVICE_HOSTS="127.0.0.1",
        PUSH_RETRY_BACKOFF_SECONDS="1",
    )
    processes.start_worker()
    yield processes
    processes.stop()


def test_publishing_pushes_each_device_once_and_retries_a_503(
    service,  # noqa: F811
    worker,
    sergeant,
    officer,
    auxiliary,
    outsider,
):
    phone, laptop, busy = (
        device(service, officer),
        device(service, officer),
        device(service, auxiliary),
    )
    elsewhere = device(service, outsider)
    service.answers[busy["endpoint"].rsplit("/", 1)[1]] = [503, 503]

    published_bulletin(sergeant, officer.unit, priority=1, title="No solo posts")
    wait_for(lambda: len(service.messages) >= 3, timeout=40, message="three pushes")
    wait_for(lambda: not PushDelivery.objects.filter(sent_at__isnull=True).exists(), timeout=10)

    assert [len(service.to(s)) for s in (phone, laptop, busy, elsewhere)] == [1, 1, 1, 0], (
        worker.logs()[-3000:]
    )
    assert service.to(busy)[0]["body"] == "No solo posts"
    assert PushDelivery.objects.get(subscription__endpoint=busy["endpoint"]).attempts == 3
    assert service.refused == []
