from http import HTTPStatus

import pytest
from django.urls import reverse

from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker_without_login(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": "postgresql"}
    assert body["broker"]["ok"] is True


def test_healthz_is_503_when_the_broker_does_not_answer(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get(reverse("healthz"))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
