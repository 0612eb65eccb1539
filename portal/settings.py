"""Settings for the officer-safety portal, read from the environment.

Every variable is documented in the README's configuration table. Defaults give the embedded
setup of `make run` (SQLite and kombu's filesystem broker under var/); production and the test
suite set DATABASE_URL and REDIS_URL.
"""

import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-development-key-not-for-production")
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

PORTAL_NAME = env("PORTAL_NAME", default="Officer Safety Bulletins")
SITE_URL = env("SITE_URL", default="http://localhost:8000")

INSTALLED_APPS = [
    "portal",
    "bulletins",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "treebeard",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.MFAEnrolmentMiddleware",
    "portal.last_seen.LastSeenMiddleware",
    "portal.middleware.NoStoreMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "bulletins.context_processors.urgent",
            ],
        },
    },
]

# Database: PostgreSQL in production and tests, a SQLite file for the embedded default.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # psycopg prepares a statement that binds on the server once it has run 5 times on a
    # connection: only the acknowledgement's (bulletins.services.reading; Django's own queries
    # bind in the client and are never prepared). Off behind a transaction-mode PgBouncer
    # older than 1.21, which cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is the broker and the shared cache in production; without it, the embedded default.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="portal"),
        }
    }
    # Sessions are read from Redis and written through to the database, which keeps the copy
    # that counts: a signed-in page costs one query less.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "portal.backends.RoleBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name", "badge")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "portal.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

# django-allauth: email sign-in, no public sign-up.
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PORTAL_NAME}] "
ACCOUNT_REAUTHENTICATION_TIMEOUT = 5 * 60
# A link that sets a password lasts an hour when the person asked for it (reset), a day when an
# admin or the roster sent it (invitation): portal.password_links.
PASSWORD_RESET_TIMEOUT = 3600
INVITATION_TIMEOUT = 24 * 3600
ACCOUNT_PASSWORD_RESET_TOKEN_GENERATOR = "portal.password_links.ResetLinkTokens"
ACCOUNT_FORMS = {"login": "portal.sign_in.SignInForm"}
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    # Per account, portal.lockout counts failures (and an admin's unlock takes effect at once).
    "login_failed": "10/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "change_password": "5/m/user",
}
MFA_ADAPTER = "portal.mfa.MFAAdapter"
MFA_FORMS = {
    "authenticate": "portal.mfa.AuthenticateForm",
    "reauthenticate": "portal.mfa.ReauthenticateForm",
    "add_webauthn": "portal.mfa.AddPasskeyForm",
    "login_webauthn": "portal.mfa.PasskeySignInForm",
}
# Passkeys (WebAuthn) are the quick way on a phone; an authenticator app's code still works.
MFA_SUPPORTED_TYPES = ["webauthn", "totp", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
# fido2 already accepts http://localhost (a secure context); True would accept any origin at all.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False
MFA_TOTP_ISSUER = PORTAL_NAME
# Accounts come from the roster, never from sign-up: an unverified address is no takeover risk.
MFA_ALLOW_UNVERIFIED_EMAIL = True
# CJIS 5.6.2.2: advanced authentication for all access.
MFA_REQUIRED_FOR = env.str("MFA_REQUIRED_FOR", default="all")
if MFA_REQUIRED_FOR not in ("all", "supervisors", "none"):
    raise ImproperlyConfigured("MFA_REQUIRED_FOR must be all, supervisors or none")
MFA_ENCRYPTION_KEY_IS_SET = "DJANGO_MFA_ENCRYPTION_KEY" in os.environ
MFA_ENCRYPTION_KEY = env("DJANGO_MFA_ENCRYPTION_KEY", default=f"derived:{SECRET_KEY}")

# The load balancers and proxies of ours in front of the web processes (1 behind one load
# balancer). The client is the address this many from the right of X-Forwarded-For; with 0 the
# header is ignored (anyone can send it). Rate limits (allauth) and the audit trail both use it.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
TRUSTED_PROXY_COUNT_IS_SET = "TRUSTED_PROXY_COUNT" in os.environ
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Account lockout (CJIS AC-7).
LOCKOUT_FAILURE_LIMIT = env.int("LOCKOUT_FAILURE_LIMIT", default=5)
LOCKOUT_WINDOW_MINUTES = env.int("LOCKOUT_WINDOW_MINUTES", default=15)
LOCKOUT_AUTO_UNLOCK_MINUTES = env.int("LOCKOUT_AUTO_UNLOCK_MINUTES", default=30)
ACKNOWLEDGE_RATE_PER_MINUTE = env.int("ACKNOWLEDGE_RATE_PER_MINUTE", default=30)
# Refused roll-call codes a person may type within LOCKOUT_WINDOW_MINUTES; past it, no code is
# checked for them until the window has passed (bulletins.roll_call_views).
ROLL_CALL_CODE_FAILURE_LIMIT = env.int("ROLL_CALL_CODE_FAILURE_LIMIT", default=5)
# An acknowledgement made offline is refused when its device time is older than this on arrival.
OFFLINE_ACK_MAX_HOURS = env.int("OFFLINE_ACK_MAX_HOURS", default=12)
# Refused API tokens a client IP may send per minute; past it, 429 until the minute ends.
API_TOKEN_REFUSALS_PER_MINUTE = env.int("API_TOKEN_REFUSALS_PER_MINUTE", default=20)

# Shown on the sign-in page (CJIS AC-8). Blank lines separate paragraphs.
SYSTEM_USE_NOTICE = env.str(
    "SYSTEM_USE_NOTICE",
    default=(
        "You are accessing a restricted information system of a law enforcement agency, "
        "for authorized use only.\n\n"
        "Use of this system is monitored, recorded and audited. Unauthorized or improper use "
        "is prohibited and may result in disciplinary action and civil and criminal penalties."
        "\n\n"
        "By using this system you consent to this monitoring and recording."
    ),
)

# Email: console by default; set EMAIL_URL (smtp://user:pass@host:587/?tls=True) in production.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="bulletins@portal.invalid")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Celery: the broker is Redis when REDIS_URL is set, else kombu's filesystem transport.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Task modules that autodiscovery (each app's tasks.py) does not find.
CELERY_IMPORTS = ["bulletins.api.tasks"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Workers keep their database connection between tasks, as web processes do between requests
# (portal.celery closes old ones around each task); Celery's fix-up recycles it every 500 tasks.
CELERY_DB_REUSE_MAX = 500
# One queue per deployment; test runs pick their own so parallel runs never take each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")
SWEEP_INTERVAL_SECONDS = env.int("SWEEP_INTERVAL_SECONDS", default=30)
# Audit events are written unsealed and chained this often (portal.audit.seal).
AUDIT_SEAL_INTERVAL_SECONDS = env.int("AUDIT_SEAL_INTERVAL_SECONDS", default=5)
# The chain's HMAC key and where its signed checkpoints go: outside the database, out of its
# owner's reach (portal.audit). Changing the key makes every sealed event fail verification.
AUDIT_CHAIN_KEY_IS_SET = "AUDIT_CHAIN_KEY" in os.environ
AUDIT_CHAIN_KEY = env("AUDIT_CHAIN_KEY", default=f"derived:{SECRET_KEY}")
AUDIT_CHECKPOINT_DIR = env.path("AUDIT_CHECKPOINT_DIR", default=VAR_DIR / "audit-checkpoints")
# Coverage figures someone is watching are computed again this often while their counts move;
# a view shows figures up to three times this old (bulletins.coverage_cache).
COVERAGE_REFRESH_SECONDS = env.int("COVERAGE_REFRESH_SECONDS", default=5)
# Audiences up to this size get their recipient rows inside the publishing transaction; larger
# ones from a task right after commit (publishing to 36,000 takes about 1.5 s of writes).
FAN_OUT_INLINE_LIMIT = env.int("FAN_OUT_INLINE_LIMIT", default=2000)
REVIEW_GRACE_HOURS = env.int("REVIEW_GRACE_HOURS", default=12)
# Reminder, then escalation cadence for unacknowledged Orders, per priority (minutes).
REMINDER_DELAY_MINUTES = {
    1: env.int("REMINDER_IMMEDIATE_MINUTES", default=15),
    2: env.int("REMINDER_PRIORITY_MINUTES", default=4 * 60),
    3: env.int("REMINDER_ROUTINE_MINUTES", default=24 * 60),
}
ESCALATION_MAX_STEPS = 4
# false: a person off duty when told of an Order is reminded (and their supervisors told) from
# the start of their next tour, not at 3 a.m.; true: everyone on the cadence above at once.
CHASE_OFF_DUTY = env.bool("CHASE_OFF_DUTY", default=False)
# When a bulletin needs a second person's approval before it goes out: "beyond-own-command"
# (its audience reaches outside the units the author supervises, or the whole agency), "all",
# or "none". Exercises follow EXERCISE_APPROVAL ("same": the same rule, or one of the three).
APPROVAL_REQUIRED_FOR = env.str("APPROVAL_REQUIRED_FOR", default="beyond-own-command")
EXERCISE_APPROVAL = env.str("EXERCISE_APPROVAL", default="same")
# An emergency publication (no approval first) must be confirmed or lifted this soon, or it
# escalates up the chain on the Immediate cadence.
EMERGENCY_REVIEW_MINUTES = env.int("EMERGENCY_REVIEW_MINUTES", default=60)
# Web Push (bulletins.services.push): off while either key is empty. `manage.py vapid_keys`
# prints a pair; the subject is the agency's contact for the push services (mailto: or https:).
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:bulletins@portal.invalid")
# The push services a device may name (the portal POSTs to them): HTTPS hosts; a leading dot
# allows subdomains. Plain http is accepted only for a listed 127.0.0.1 / localhost (tests).
PUSH_SERVICE_HOSTS = env.list(
    "PUSH_SERVICE_HOSTS",
    default=[
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        ".push.apple.com",
        ".notify.windows.com",
    ],
)
PUSH_BATCH_SIZE = env.int("PUSH_BATCH_SIZE", default=500)
# Tasks sending one event's pushes side by side (each claims its own batches).
PUSH_SENDERS = env.int("PUSH_SENDERS", default=2)
PUSH_TTL_SECONDS = env.int("PUSH_TTL_SECONDS", default=12 * 3600)
PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", default=8)
PUSH_RETRY_BACKOFF_SECONDS = env.int("PUSH_RETRY_BACKOFF_SECONDS", default=10)
# A row claimed this long ago and not finished belongs to a worker that died: never re-sent.
PUSH_LEASE_SECONDS = env.int("PUSH_LEASE_SECONDS", default=900)
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "bulletins.tasks.sweep_task", "schedule": float(SWEEP_INTERVAL_SECONDS)},
    # A safety net: the outbox is also drained right after each event commits.
    "send-notifications": {"task": "bulletins.tasks.send_notifications_task", "schedule": 60.0},
    # Pushes: lost dispatches, stranded retries, and the leases of workers that died.
    "send-pushes": {"task": "bulletins.tasks.send_pushes_task", "schedule": 60.0},
    # Runs not started within their interval are dropped: the next one does the same work.
    "refresh-coverage": {
        "task": "bulletins.tasks.refresh_coverage_task",
        "schedule": float(COVERAGE_REFRESH_SECONDS),
        "options": {"expires": float(COVERAGE_REFRESH_SECONDS)},
    },
    "seal-audit": {
        "task": "portal.tasks.seal_audit_task",
        "schedule": float(AUDIT_SEAL_INTERVAL_SECONDS),
        "options": {"expires": float(AUDIT_SEAL_INTERVAL_SECONDS)},
    },
    "checkpoint-audit": {
        "task": "portal.tasks.checkpoint_audit_task",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
}

# Logs: JSON lines with the request id in production; plain lines under DEBUG.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "portal.logs.RequestIdFilter"},
        "redact": {"()": "portal.logs.RedactFilter"},
    },
    "formatters": {
        "json": {
            "()": "portal.logs.PortalJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("DJANGO_LOG_FORMAT", default="plain" if DEBUG else "json"),
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# HTTPS hardening: on by default outside DEBUG; DJANGO_SECURE_SSL_REDIRECT=false behind a
# proxy that already redirects.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# __Host-: the browser keeps the cookie only when it is Secure, for "/" and without a Domain, so
# no other host under the same domain can set or overwrite it. Over plain HTTP (`make run`,
# DJANGO_SECURE_COOKIES=false) a browser refuses the prefix: the plain names then.
SESSION_COOKIE_NAME = "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages carry the token (forms, hx-headers); no script reads it
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Sessions (CJIS AC-11, IA-11), enforced on the server by portal.middleware.
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=30 * 60)
SESSION_ABSOLUTE_TIMEOUT_SECONDS = env.int("SESSION_ABSOLUTE_TIMEOUT_SECONDS", default=12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_SECONDS
# What a device keeps for reading offline (bulletins.offline): attachments up to this many MB in
# all; Intelligence bulletins only when OFFLINE_RESTRICTED is true.
OFFLINE_ATTACHMENTS_MB = env.int("OFFLINE_ATTACHMENTS_MB", default=20)
OFFLINE_RESTRICTED = env.bool("OFFLINE_RESTRICTED", default=False)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4): no inline script or style anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # allauth shows the TOTP QR code as a data: image
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [NONE],
    }
}
