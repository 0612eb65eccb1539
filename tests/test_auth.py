"""Signing in and out, pages closed to anonymous visitors, the layout every page shares."""

import copy
import re
import uuid
from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.template.loader import render_to_string
from django.test import Client
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse

from portal import mfa
from portal.models import User
from tests.factories import TOTP_SECRET
from tests.sign_in import totp_code

pytestmark = pytest.mark.django_db

WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."


def _url_or_none(name):
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


# Feeds for feed readers and other systems: they answer 401 with a challenge, not a redirect.
MACHINE_ENDPOINTS = {"bulletins:cap_feed"}


def _bulletin_pages_without_arguments():
    """Every URL of the `bulletins` namespace that takes no argument, so new pages are covered."""
    names = []
    for entry in get_resolver().url_patterns:
        if not isinstance(entry, URLResolver) or entry.namespace != "bulletins":
            continue
        for pattern in entry.url_patterns:
            name = f"bulletins:{pattern.name}"
            if pattern.name and _url_or_none(name) and name not in MACHINE_ENDPOINTS:
                names.append(name)
    return names


def test_machine_endpoints_refuse_anonymous_callers_with_401(client):
    for name in MACHINE_ENDPOINTS:
        response = client.get(reverse(name))

        assert response.status_code == HTTPStatus.UNAUTHORIZED


@pytest.fixture(autouse=True)
def own_rate_limit_counters(settings):
    """allauth counts failed sign-ins per IP in the shared cache; a fresh key prefix keeps
    parallel and repeated runs from tripping each other's limits."""
    caches = copy.deepcopy(django_settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-auth-{uuid.uuid4().hex}"
    settings.CACHES = caches


def sign_in(client, email, password):
    return client.post(
        reverse("account_login"), {"login": email, "password": password, "accept_notice": "on"}
    )


def test_sign_in_with_email_password_and_code_lands_on_the_feed(client, officer, password):
    mfa.enrol_totp(officer, TOTP_SECRET)  # everyone has a second step (MFA_REQUIRED_FOR=all)
    sign_in(client, "officer@agency.test", password)

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(TOTP_SECRET)})

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/"
    feed = client.get(response.url)
    assert feed.status_code == HTTPStatus.OK
    assert "Maria Lopez" in feed.text
    assert "17th Precinct" in feed.text


def test_wrong_password_is_refused_with_a_message(client, officer):
    response = sign_in(client, "officer@agency.test", "not-the-password")

    assert response.status_code == HTTPStatus.OK
    assert WRONG_CREDENTIALS in response.text
    assert "_auth_user_id" not in client.session


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client, officer):
    response = sign_in(client, "nobody@agency.test", "not-the-password")

    assert response.status_code == HTTPStatus.OK
    assert WRONG_CREDENTIALS in response.text
    assert "_auth_user_id" not in client.session


def test_missing_field_error_is_shown_next_to_its_field(client):
    response = client.post(reverse("account_login"), {"login": "", "password": ""})

    html = response.text
    assert response.status_code == HTTPStatus.OK
    assert '<label for="id_login">' in html
    assert 'id="id_login_error"' in html
    assert 'aria-describedby="id_login_error"' in html
    assert 'aria-invalid="true"' in html


@pytest.mark.parametrize(
    "url_name",
    [
        "bulletins:feed",
        "admin:index",
        "account_change_password",
        "mfa_index",
    ]
    + _bulletin_pages_without_arguments(),
)
def test_anonymous_visitor_is_sent_to_sign_in(client, url_name):
    url = reverse(url_name)

    response = client.get(url, follow=True)

    assert response.redirect_chain
    assert response.redirect_chain[-1][0].startswith(reverse("account_login") + "?next=")
    assert response.request["PATH_INFO"] == reverse("account_login")


def test_admin_sign_in_goes_through_the_portal_sign_in(client):
    response = client.get(reverse("admin:login"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


def test_bulletin_pages_are_found_by_the_anonymous_redirect_check():
    assert "bulletins:feed" in _bulletin_pages_without_arguments()


@pytest.mark.parametrize("url_name", ["account_login", "account_reset_password"])
def test_sign_in_and_password_reset_are_open_to_anonymous_visitors(client, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == HTTPStatus.OK


def test_health_check_is_open_to_anonymous_visitors(client):
    response = client.get(reverse("healthz"))

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE)


def test_sign_in_page_offers_password_reset_and_no_sign_up(client):
    response = client.get(reverse("account_login"))

    assert 'href="{}"'.format(reverse("account_reset_password")) in response.text
    assert "Forgot your password?" in response.text
    assert reverse("account_signup") not in response.text
    assert "sign up" not in response.text.lower()


def test_system_use_notice_is_shown_when_configured(rf):
    html = render_to_string(
        "account/login.html",
        {"system_use_notice": "Authorised use only.\n\nActivity is monitored.", "form": None},
        request=rf.get("/"),
    )

    assert 'class="system-use-notice"' in html
    assert "<p>Authorised use only.</p>" in html


def test_sign_up_is_closed(client):
    users_before = User.objects.count()

    page = client.get(reverse("account_signup"))
    posted = client.post(
        reverse("account_signup"),
        {"email": "newcomer@agency.test", "password1": "a-long-enough-passphrase"},
    )

    assert page.status_code == HTTPStatus.OK
    assert "account/signup_closed.html" in [t.name for t in page.templates]
    assert "Sign-up is closed" in page.text
    assert "account/signup_closed.html" in [t.name for t in posted.templates]
    assert User.objects.count() == users_before
    assert not User.objects.filter(email="newcomer@agency.test").exists()


def test_sign_out_by_post_ends_the_session(client, officer, password):
    sign_in(client, "officer@agency.test", password)
    old_session = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    response = client.post(reverse("account_logout"))

    assert response.status_code == HTTPStatus.FOUND
    replay = Client()
    replay.cookies[django_settings.SESSION_COOKIE_NAME] = old_session
    after = replay.get(reverse("bulletins:feed"))
    assert after.status_code == HTTPStatus.FOUND
    assert after.url.startswith(reverse("account_login"))


def test_sign_out_is_a_post_form_with_csrf_in_the_header(client, officer):
    client.force_login(officer)

    html = client.get(reverse("bulletins:feed")).text

    logout_url = re.escape(reverse("account_logout"))
    form = re.search(rf'<form method="post" action="{logout_url}">(.*?)</form>', html, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert "Sign out" in form.group(1)


def test_officer_sees_the_feed_link_and_no_supervisor_or_admin_links(client, officer):
    client.force_login(officer)

    html = client.get(reverse("bulletins:feed")).text

    assert ">In force</a>" in html
    assert "New bulletin" not in html
    assert ">Coverage</a>" not in html
    assert 'href="{}"'.format(reverse("admin:index")) not in html


@pytest.mark.parametrize("persona", ["sergeant", "admin"])
def test_authors_see_new_bulletin_once_the_page_exists(client, persona, request):
    client.force_login(request.getfixturevalue(persona))

    html = client.get(reverse("bulletins:feed")).text

    create_url = _url_or_none("bulletins:create")
    assert ("New bulletin" in html) is (create_url is not None)


def test_only_a_superuser_sees_the_django_admin_link(client, admin):
    superuser = User.objects.create_superuser("root@agency.test", "x" * 16, name="Root")
    client.force_login(admin)
    agency_admin_html = client.get(reverse("bulletins:feed")).text
    client.force_login(superuser)

    html = client.get(reverse("bulletins:feed")).text

    assert 'href="{}"'.format(reverse("admin:index")) not in agency_admin_html
    assert 'href="{}"'.format(reverse("admin:index")) in html


def test_sergeant_without_staff_status_sees_no_admin_link(client, sergeant):
    client.force_login(sergeant)

    html = client.get(reverse("bulletins:feed")).text

    assert 'href="{}"'.format(reverse("admin:index")) not in html


def test_current_page_is_marked_in_the_navigation(client, officer):
    client.force_login(officer)

    html = client.get(reverse("bulletins:feed")).text

    assert 'href="/" aria-current="page">In force</a>' in html


@pytest.fixture
def signed_in_feed(client, officer):
    client.force_login(officer)
    return client.get(reverse("bulletins:feed")).text


@pytest.fixture
def sign_in_page(client):
    return client.get(reverse("account_login")).text


@pytest.mark.parametrize("page", ["sign_in_page", "signed_in_feed"])
def test_page_has_viewport_language_and_skip_link(page, request):
    html = request.getfixturevalue(page)

    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert 'class="skip-link" href="#main"' in html
    assert '<main id="main"' in html


@pytest.mark.parametrize("page", ["sign_in_page", "signed_in_feed"])
def test_page_has_nothing_a_strict_csp_would_block(page, request):
    html = request.getfixturevalue(page)

    # JSON data blocks (allauth's passkey settings) are never run: the CSP does not block them.
    assert re.findall(r"<script\b(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", html) == []
    assert re.findall(r"<style\b", html) == []
    assert re.findall(r"\sstyle\s*=", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"(?:href|src)=\"(?:https?:)?//", html) == []


def test_htmx_is_served_from_our_own_static_files(signed_in_feed):
    assert re.search(r'<script src="/static/django_htmx/htmx-2[^"]*\.js"', signed_in_feed)


def test_password_change_page_has_labelled_fields(client, officer):
    client.force_login(officer)

    response = client.get(reverse("account_change_password"))

    assert response.status_code == HTTPStatus.OK
    assert '<label for="id_oldpassword">' in response.text
    assert '<label for="id_password1">' in response.text
    assert 'class="button"' in response.text


def test_unknown_page_says_nothing_internal(client, officer):
    client.force_login(officer)

    response = client.get("/no-such-page/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "We could not find that page or you do not have access to it." in response.text
    assert "Traceback" not in response.text
    assert 'href="/"' in response.text


def test_server_error_page_renders_without_any_context():
    html = render_to_string("500.html")

    assert "Something went wrong" in html
    assert 'href="/"' in html


@pytest.mark.parametrize("template", ["403.html", "429.html"])
def test_error_pages_render_in_the_portal_layout(rf, template, officer):
    request = rf.get("/")
    request.user = officer

    html = render_to_string(template, request=request)

    assert 'class="skip-link"' in html
    assert 'href="/"' in html


def test_what_the_role_grants_is_checked_without_a_query(sergeant, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert sergeant.has_perm("bulletins.view_coverage")
        assert sergeant.has_perm("bulletins.author_bulletin")


def test_groups_still_add_permissions_beyond_the_role(officer):
    from django.contrib.auth.models import Group, Permission

    assert not officer.has_perm("bulletins.view_coverage")
    watch = Group.objects.create(name="Watch desk")
    watch.permissions.add(Permission.objects.get(codename="view_coverage"))
    officer.groups.add(watch)

    fresh = User.objects.get(pk=officer.pk)
    assert fresh.has_perm("bulletins.view_coverage")
    fresh.is_active = False
    assert not fresh.has_perm("bulletins.view_coverage")
