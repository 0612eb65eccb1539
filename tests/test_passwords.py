"""The system-use notice on the sign-in page and the password rules."""

import pytest
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


def test_the_sign_in_page_shows_the_system_use_notice(client):
    html = client.get(reverse("account_login")).text

    assert 'class="system-use-notice"' in html
    for words in ("restricted", "monitored", "audited", "penalties", "consent"):
        assert words in html


def test_the_system_use_notice_is_configurable(client, settings):
    settings.SYSTEM_USE_NOTICE = "Metro PD: authorized personnel only."

    html = client.get(reverse("account_login")).text

    assert "Metro PD: authorized personnel only." in html


@pytest.mark.parametrize(
    "password",
    ["short-pw-11", "x" * 129, "password1234", "officer.agency.test"],
    ids=["11 characters", "129 characters", "common", "like the email"],
)
def test_weak_passwords_are_refused(officer, password):
    with pytest.raises(ValidationError):
        password_validation.validate_password(password, officer)


def test_a_long_unusual_password_is_accepted_and_hashed_with_pbkdf2(officer):
    password_validation.validate_password("tangerine-lamppost-47", officer)

    assert make_password("tangerine-lamppost-47").startswith("pbkdf2_sha256$")
