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
    if not settings.TRUSTED_PROXY_COUNT_IS_SET:
        problems.append(
            Warning(
                "TRUSTED_PROXY_COUNT is not set: behind a load balancer every request seems to "
                "come from the balancer, so the per-address sign-in limits count the whole "
                "agency as one address and the audit trail records the balancer's address.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies of yours in front of the "
                "web processes (1 behind one load balancer; 0 if clients connect directly).",
                id="portal.W004",
            )
        )
    return problems


@register(Tags.security, deploy=True)
def check_audit_chain_key(app_configs, **kwargs):
    if settings.AUDIT_CHAIN_KEY_IS_SET:
        return []
    return [
        Warning(
            "The audit trail's hash chain is keyed by a key derived from SECRET_KEY: rotating "
            "the secret key would make every sealed audit event fail verification.",
            hint="Set AUDIT_CHAIN_KEY to a long random value, keep it out of the database "
            "server's reach, and never change it.",
            id="portal.W016",
        )
    ]
