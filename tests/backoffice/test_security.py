"""Log-in security through the real pages (issue 6): password then TOTP, recovery codes, lockout, sessions.

Staff must use a second factor; creditor users may turn it on and their admin may require it. Codes
are computed as a phone would (pyotp, RFC 6238) from the secret the enrolment page shows.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import timedelta

import pyotp
import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from relance.audit.models import AuditEvent
from relance.tenancy.models import User
from support import PASSWORD, totp_code, totp_device

pytestmark = pytest.mark.django_db


def password_step(username: str, password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post("/bo/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content
    return client


def enrol(client: Client) -> tuple[str, list[str]]:
    """Go through the enrolment page as a person would; returns the TOTP secret and recovery codes."""
    page = client.get("/bo/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html  # the QR code is inline: no external service
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    device = re.search(r'name="device" value="(\d+)"', html).group(1)
    wrong = client.post("/bo/security/", {"action": "confirm", "device": device, "code": "000000"})
    assert wrong.status_code == 200 and b'id="code-error"' in wrong.content
    TOTPDevice.objects.filter(pk=device).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    done = client.post("/bo/security/", {"action": "confirm", "device": device, "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    return secret, codes


def unthrottle(user) -> None:
    for model in (TOTPDevice, StaticDevice):
        model.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def test_staff_must_set_up_two_factor_then_log_in_with_a_code(world):
    client = password_step("agent")
    assert client.get("/bo/").url == "/bo/security/?next=/bo/"  # no page before the second factor
    assert client.get("/bo/cases/1/").url.startswith("/bo/security/")
    secret, codes = enrol(client)
    assert len(codes) == 10
    assert client.get("/bo/").status_code == 200  # enrolment verified this session
    assert AuditEvent.objects.filter(verb="user.second_factor_enabled", subject_id=str(world.agent.pk)).exists()

    # Next time: password, then the code page; nothing else opens in between.
    client = password_step("agent")
    assert client.get("/bo/").url == "/bo/login/verify/?next=/bo/"
    assert client.get("/bo/security/").url.startswith("/bo/login/verify/")  # no second phone with a password alone
    bad = client.post("/bo/login/verify/", {"code": "123456", "next": "/bo/"})
    assert bad.status_code == 200 and b'id="code-error"' in bad.content
    device = TOTPDevice.objects.get(user=world.agent)
    assert device.throttling_failure_count == 1  # django-otp slows wrong codes down
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    totp = pyotp.TOTP(secret)
    good = client.post("/bo/login/verify/", {"code": totp.at(timezone.now() + timedelta(seconds=30)), "next": "/bo/"})
    assert good.status_code == 302 and good.url == "/bo/"
    assert client.get("/bo/").status_code == 200


def test_a_recovery_code_works_once(world):
    client = password_step("agent")
    _, codes = enrol(client)
    first = password_step("agent")
    assert first.post("/bo/login/verify/", {"code": codes[0]}).status_code == 302
    assert first.get("/bo/").status_code == 200
    assert AuditEvent.objects.filter(verb="user.recovery_code_used").count() == 1
    again = password_step("agent")
    unthrottle(world.agent)
    assert again.post("/bo/login/verify/", {"code": codes[0]}).status_code == 200
    assert again.get("/bo/").status_code == 302


def test_new_recovery_codes_replace_the_old_ones(world):
    client = password_step("agent")
    _, old = enrol(client)
    page = client.post("/bo/security/", {"action": "regenerate"})
    new = re.findall(r"<li><code>(\w+)</code></li>", page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    other = password_step("agent")
    assert other.post("/bo/login/verify/", {"code": old[1]}).status_code == 200
    unthrottle(world.agent)  # a wrong code delays the next try (django-otp); the test does not wait
    assert other.post("/bo/login/verify/", {"code": new[1]}).status_code == 302


def test_creditor_users_may_turn_two_factor_on_and_their_admin_may_require_it(world):
    viewer = User.objects.create_user(
        username="viewer",
        password=PASSWORD,
        role=User.Role.CREDITOR_VIEWER,
        agency=world.agency,
        creditor=world.creditor,
    )
    # Optional at first: the password is enough.
    assert password_step("viewer").get("/bo/").status_code == 200

    # The creditor admin requires it (the admin has 2FA: force_login passes their second factor).
    admin = Client()
    admin.force_login(world.creditor_user)
    page = admin.get("/bo/security/creditor/")
    assert page.status_code == 200 and b"viewer" in page.content
    saved = admin.post("/bo/security/creditor/", {"creditor": world.creditor.pk, "require_2fa": "on"})
    assert saved.status_code == 302
    world.creditor.refresh_from_db()
    assert world.creditor.require_2fa
    # …for their own creditor only: another creditor's id is refused.
    refused = admin.post("/bo/security/creditor/", {"creditor": world.other_creditor.pk, "require_2fa": "on"})
    assert refused.status_code == 200
    world.other_creditor.refresh_from_db()
    assert not world.other_creditor.require_2fa

    client = password_step("viewer")
    assert client.get("/bo/").url.startswith("/bo/security/")
    enrol(client)
    assert client.get("/bo/").status_code == 200
    assert client.post("/bo/security/", {"action": "disable"}).status_code == 302  # refused: required
    assert TOTPDevice.objects.filter(user=viewer, confirmed=True).exists()


def test_a_creditor_user_who_turned_two_factor_on_needs_it_and_may_turn_it_off(world):
    client = password_step("shopuser")
    assert client.get("/bo/").status_code == 200
    enrol(client)
    later = password_step("shopuser")
    assert later.get("/bo/").url.startswith("/bo/login/verify/")
    code = totp_code(totp_device(world.creditor_user))
    assert later.post("/bo/login/verify/", {"code": code}).status_code == 302
    assert later.post("/bo/security/", {"action": "disable"}).status_code == 302
    assert not TOTPDevice.objects.filter(user=world.creditor_user).exists()
    assert password_step("shopuser").get("/bo/").status_code == 200


def test_wrong_passwords_lock_the_account_out_for_a_while(world, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert Client().post("/bo/login/", {"username": "agent", "password": "nope"}).status_code == 200
    locked = Client().post("/bo/login/", {"username": "agent", "password": "nope"})
    assert locked.status_code == 429
    assert b'id="locked"' in locked.content
    # Even the right password is refused during the lockout…
    assert Client().post("/bo/login/", {"username": "agent", "password": PASSWORD}).status_code == 429
    # …but another user from the same address is not locked out.
    assert Client().post("/bo/login/", {"username": "shopuser", "password": PASSWORD}).status_code == 302


def test_an_idle_session_expires(world):
    client = Client()
    client.force_login(world.agent)
    assert client.get("/bo/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/bo/")
    assert response.status_code == 302 and response.url.startswith("/bo/login/")


def test_pages_carry_csp_and_cookies_are_httponly(world):
    client = Client()
    response = client.post("/bo/login/", {"username": "shopuser", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = client.get("/bo/security/")
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page["X-Frame-Options"] == "DENY"


def test_production_settings_send_cookies_over_https_only(tmp_path):
    env = {
        **os.environ,
        "RELANCE_ENV": "production",
        "SECRET_KEY": "x" * 50,
        "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite3",
        "RELANCE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "relance.config.settings",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, "
        "s.SESSION_EXPIRE_AT_BROWSER_CLOSE)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.split() == ["True", "True", "True", "True"]


def test_the_enrolment_secret_matches_the_device(world):
    client = password_step("agent")
    html = client.get("/bo/security/").content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    device = TOTPDevice.objects.get(user=world.agent, confirmed=False)
    assert base64.b32encode(device.bin_key).decode().rstrip("=") == secret


def test_an_operator_resets_a_lost_phone(world):
    from django.core.management import call_command

    totp_device(world.agent)
    call_command("second_factor_reset", "agent", "--by", "helpdesk")
    assert not TOTPDevice.objects.filter(user=world.agent).exists()
    assert AuditEvent.objects.filter(verb="user.second_factor_reset", actor="system:cli:helpdesk").exists()
    assert password_step("agent").get("/bo/").url.startswith("/bo/security/")  # enrols again
