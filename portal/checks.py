"""Deployment checks of the security baseline (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

SHARED_CACHES = (
    "portal.cache.RedisCache",
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
)


@register(Tags.security, deploy=True)
def check_security_baseline(app_configs, **kwargs):
    problems = []
    if settings.CACHES["default"]["BACKEND"] not in SHARED_CACHES:
        problems.append(
            Warning(
                "Rate limits and lockout counters live in a cache that is not shared between "
                "processes and hosts.",
                hint="Set REDIS_URL.",
                id="portal.W001",
            )
        )
    if not settings.MFA_ENCRYPTION_KEY_IS_SET:
        problems.append(
            Warning(
                "TOTP secrets are encrypted with a key derived from SECRET_KEY: rotating the "
                "secret key would lock out every MFA user.",
                hint="Set DJANGO_MFA_ENCRYPTION_KEY to a long random value and keep it.",
                id="portal.W002",
            )
        )
    return problems
