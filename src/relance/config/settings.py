"""Relance settings, read from the environment.

The embedded default (no variables set) is SQLite under ``var/``, e-mails written to files, and a
development secret key generated per installation. Production (``RELANCE_ENV=production``) refuses
to start without ``SECRET_KEY`` and ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent  # src/relance
VAR_DIR = Path(os.environ.get("RELANCE_VAR_DIR", Path.cwd() / "var")).resolve()

ENV = os.environ.get("RELANCE_ENV", "development")
PRODUCTION = ENV == "production"
DEBUG = os.environ.get("DEBUG", "0") == "1" and not PRODUCTION


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The secret key comes from the environment; the embedded default keeps one in var/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when RELANCE_ENV=production.")
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# The base URL used in links sent to debtors (e-mails, letters).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "relance.core",
    "relance.tenancy",
    "relance.audit",
    "relance.compliance",
    "relance.ledger",
    "relance.claims",
    "relance.cases",
    "relance.comms",
    "relance.strategies",
    "relance.intake",
    "relance.payments",
    "relance.portal",
    "relance.backoffice",
    "relance.api",
    "relance.simulation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "relance.backoffice.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "relance.core.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its 429 page
]

ROOT_URLCONF = "relance.config.urls"
WSGI_APPLICATION = "relance.config.wsgi.application"

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
                "django.template.context_processors.i18n",
                "relance.tenancy.access.permissions_context",
            ],
        },
    },
    {
        # The debtor portal's own engine (relance.portal.rendering): Jinja2 through Django's backend, its
        # templates in relance/portal/jinja2/ only; Django's messages, formats and filters in
        # relance.portal.jinja (decision 0006). The backend adds request, csrf_input and csrf_token.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "portal",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "relance.portal.jinja.environment"},
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'relance.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL", "" if PRODUCTION else _default_db)
if not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must be set when RELANCE_ENV=production.")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web threads read while the in-process engine writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg keeps a statement prepared (protocol level: parsed and planned once per connection) where
    # the code asks for it, `prepare=True`: the portal's fixed reads and the dispatcher's hand-over.
    # Django's default (None) turns that off altogether; a threshold no statement reaches keeps psycopg
    # from preparing anything else on its own (Django's own cursors bind on the client and never do).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = sys.maxsize
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tenancy.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: it refuses a locked-out (username, IP) before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "backoffice:login"
LOGIN_REDIRECT_URL = "backoffice:home"
LOGOUT_REDIRECT_URL = "backoffice:login"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en-gb", "English")]  # en-gb: day-first dates, like the French UI
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise serves from finders; the folder must exist
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
WHITENOISE_USE_FINDERS = True

# Security defaults: cookies are HttpOnly and SameSite; secure-only behind TLS in production.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Sessions end after RELANCE_SESSION_IDLE_SECONDS without a request (each request extends it) and
# when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("RELANCE_SESSION_IDLE_SECONDS", str(60 * 60)))
SESSION_SAVE_EVERY_REQUEST = True
# The database engine, without a write on every request (the expiry is refreshed at most once a minute).
SESSION_ENGINE = "relance.core.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))

# Login throttling (django-axes): RELANCE_LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address lock that pair out for RELANCE_LOGIN_LOCKOUT_MINUTES; a success resets the count.
AXES_FAILURE_LIMIT = int(os.environ.get("RELANCE_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = int(os.environ.get("RELANCE_LOGIN_LOCKOUT_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "backoffice/locked.html"
AXES_VERBOSE = False
# Two-factor authentication (django-otp): the issuer shown in authenticator apps; wrong codes slow
# down each device exponentially (django-otp's throttling).
OTP_TOTP_ISSUER = os.environ.get("RELANCE_OTP_ISSUER", "Relance")
# Webhooks out: attempts before a delivery is marked failed (backoff doubles from one minute).
RELANCE_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("RELANCE_WEBHOOK_MAX_ATTEMPTS", "6"))
RELANCE_WEBHOOK_TIMEOUT = float(os.environ.get("RELANCE_WEBHOOK_TIMEOUT", "10"))

# E-mail: files in var/mail by default (the back office shows the outbox); SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "0") == "1"
EMAIL_TIMEOUT = 20
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    # SMTP with a hand-over point (relance.comms.mail: never twice); an ESP by anymail's backend, e.g.
    # anymail.backends.brevo.EmailBackend with ANYMAIL_BREVO_API_KEY (docs/channels.md).
    "relance.comms.mail.HandoverSMTPBackend" if EMAIL_HOST else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
# ESP credentials and the webhook basic-auth secret ("user:password"); hooks refuse all without it.
ANYMAIL = {
    key: os.environ[f"ANYMAIL_{key}"]
    for key in ("WEBHOOK_SECRET", "BREVO_API_KEY", "MAILJET_API_KEY", "MAILJET_SECRET_KEY", "AMAZON_SES_CLIENT_PARAMS")
    if os.environ.get(f"ANYMAIL_{key}")
}
# A dispatcher that claimed actions and went silent this long is presumed dead (comms.services.outbox_recover).
RELANCE_OUTBOX_LEASE_SECONDS = int(os.environ.get("RELANCE_OUTBOX_LEASE_SECONDS", "900"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "relance@localhost")

# SMS: written as JSON lines under var/sms by default; Twilio or OVHcloud when SMS_PROVIDER says so.
# Secrets come from the environment only (no defaults); a chosen provider without them refuses to start.
SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "file")
SMS_FILE_PATH = VAR_DIR / "sms"
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
OVH_ENDPOINT = os.environ.get("OVH_ENDPOINT", "https://eu.api.ovh.com/1.0").rstrip("/")
OVH_APPLICATION_KEY = os.environ.get("OVH_APPLICATION_KEY", "")
OVH_APPLICATION_SECRET = os.environ.get("OVH_APPLICATION_SECRET", "")
OVH_CONSUMER_KEY = os.environ.get("OVH_CONSUMER_KEY", "")
OVH_SMS_SERVICE_NAME = os.environ.get("OVH_SMS_SERVICE_NAME", "")
OVH_SMS_SENDER = os.environ.get("OVH_SMS_SENDER", "")
# Our SMS templates carry their own STOP line; "0" lets OVHcloud append its "STOP au 36xxx" clause too.
OVH_SMS_NO_STOP_CLAUSE = os.environ.get("OVH_SMS_NO_STOP_CLAUSE", "1") == "1"
# OVHcloud does not sign its callbacks: the inbound URL carries this secret (?token=...).
OVH_SMS_WEBHOOK_TOKEN = os.environ.get("OVH_SMS_WEBHOOK_TOKEN", "")
# What one SMS segment costs with each provider, in minor units of SMS_PRICE_CURRENCY (your contract).
SMS_PRICE_CURRENCY = os.environ.get("SMS_PRICE_CURRENCY", "EUR")
SMS_SEGMENT_PRICE_MINOR = {
    "twilio": int(os.environ.get("TWILIO_SMS_SEGMENT_PRICE_MINOR", "0")),
    "ovh": int(os.environ.get("OVH_SMS_SEGMENT_PRICE_MINOR", "0")),
    "file": 0,
}
# Dashboards: what one contact costs per channel, in euro cents, for "cost per euro recovered"
# (your contracts: ESP, SMS segment, printed letter with postage, an agent's call). Override as JSON.
CHANNEL_UNIT_COST_MINOR = {"email": 0, "sms": 7, "letter": 150, "call": 200} | json.loads(
    os.environ.get("RELANCE_CHANNEL_UNIT_COST_MINOR", "{}")
)
# Share of the outstanding amount each role may waive without a supervisor (docs/agents.md).
DISCOUNT_AUTHORITY_PERCENT = {"agent": 10, "supervisor": 30, "agency_admin": 100} | json.loads(
    os.environ.get("RELANCE_DISCOUNT_AUTHORITY_PERCENT", "{}")
)
# Peer quartiles on a creditor's dashboard need at least this many creditors, so none can be recognised.
DASHBOARD_PEER_MINIMUM = int(os.environ.get("RELANCE_DASHBOARD_PEER_MINIMUM", "5"))
_SMS_REQUIRED = {
    "file": [],
    "twilio": ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
    "ovh": ["OVH_APPLICATION_KEY", "OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY", "OVH_SMS_SERVICE_NAME"],
}
if SMS_PROVIDER not in _SMS_REQUIRED:
    raise ImproperlyConfigured(f"SMS_PROVIDER must be one of {', '.join(_SMS_REQUIRED)}, not {SMS_PROVIDER!r}.")
_sms_missing = [name for name in _SMS_REQUIRED[SMS_PROVIDER] if not os.environ.get(name)]
if SMS_PROVIDER == "twilio" and not (TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID):
    _sms_missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
if _sms_missing:
    raise ImproperlyConfigured(f"SMS_PROVIDER={SMS_PROVIDER} needs {', '.join(_sms_missing)}.")

# Tasks: Django's task API (django-tasks backport); the database backend needs no extra service.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# How long a debtor's portal link stays valid (FR: short-lived, re-sent with each reminder).
RELANCE_PORTAL_LINK_MAX_AGE = int(os.environ.get("RELANCE_PORTAL_LINK_MAX_AGE", str(60 * 60 * 24 * 45)))
# A batch of 10,000 claims is ~15 MB of JSON (POST /api/v1/claims); files go through uploads instead.
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
RELANCE_PORTAL_MAX_FAILED_VERIFICATIONS = 5
# The clearly labelled sandbox payment method of the demo; never available in production.
RELANCE_SANDBOX_PAYMENTS = not PRODUCTION and os.environ.get("RELANCE_SANDBOX_PAYMENTS", "1") == "1"
RELANCE_ENGINE_BATCH_SIZE = int(os.environ.get("RELANCE_ENGINE_BATCH_SIZE", "500"))
# Card payments through a PSP (docs/payments.md): "stripe", "mollie" or "" (none). Keys from the
# environment only; without its key a provider stays off and the portal does not offer card payment.
RELANCE_CARD_PSP = os.environ.get("RELANCE_CARD_PSP", "")
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
MOLLIE_API_KEY = os.environ.get("MOLLIE_API_KEY", "")
MOLLIE_API_BASE = os.environ.get("MOLLIE_API_BASE", "https://api.mollie.com")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "relance": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": False},
        "django": {"handlers": ["console"], "level": "WARNING"},
    },
}
