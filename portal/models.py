from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils.crypto import salted_hmac
from treebeard.mp_tree import MP_Node


class Unit(MP_Node):
    """A node of an agency's command tree; a root node is an agency.

    Materialized path (django-treebeard): a subtree is `path__startswith`, one query at any depth.
    """

    class Kind(models.TextChoices):
        AGENCY = "agency", "Agency"
        BOROUGH = "borough", "Borough / division"
        PRECINCT = "precinct", "Precinct / command"
        SQUAD = "squad", "Squad / post"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)

    class Meta:
        ordering = ["path"]

    def __str__(self):
        return self.name

    @property
    def agency_path(self):
        return self.path[: self.steplen]

    def subtree(self):
        return Unit.objects.filter(path__startswith=self.path)

    def path_names(self):
        return [unit.name for unit in Unit.objects.get_ancestors(self)] + [self.name]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True, role=User.Role.ADMIN)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A member of the agency. Never deleted: deactivate with `is_active`."""

    class MemberClass(models.TextChoices):
        SWORN = "sworn", "Sworn"
        AUXILIARY = "auxiliary", "Auxiliary"
        CIVILIAN = "civilian", "Civilian"

    class Role(models.TextChoices):
        OFFICER = "officer", "Officer"
        SUPERVISOR = "supervisor", "Supervisor"
        ADMIN = "admin", "Admin"
        AUDITOR = "auditor", "Auditor"

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150)
    badge = models.CharField("shield / badge number", max_length=20, blank=True)
    rank = models.CharField(max_length=60, blank=True)
    member_class = models.CharField(
        max_length=16, choices=MemberClass.choices, default=MemberClass.SWORN
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OFFICER)
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="members", null=True, blank=True
    )
    agency = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
        help_text="The root of the member's unit, kept for per-agency uniqueness of badges.",
    )
    is_active = models.BooleanField(default=True)
    is_on_leave = models.BooleanField(
        "on leave", default=False, help_text="No reminders while on leave; obligations wait."
    )
    wants_email = models.BooleanField(
        "email for non-urgent bulletins",
        default=True,
        help_text="Urgent orders are always emailed.",
    )
    tour = models.CharField(
        "regular tour",
        max_length=40,
        blank=True,
        help_text="The name of one of the unit's tours (Day, Evening, Midnight); blank: none.",
    )
    last_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="About when the person last opened a page (kept to a few minutes); "
        "what changed since then is listed under While you were away.",
    )
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["name"]
        permissions = [("manage_people", "Can import the roster and manage people")]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "badge"],
                condition=~Q(badge=""),
                name="badge_unique_per_agency",
            ),
        ]
        indexes = [
            # Few people are on leave at once: coverage dashboards count them among the
            # outstanding through this small index instead of reading every member.
            models.Index(fields=["id"], condition=Q(is_on_leave=True), name="user_on_leave_idx"),
            # The chain of command: the few active supervisors and admins among the members,
            # whom every "cannot comply" and escalation looks up by unit (not a scan of all).
            models.Index(
                fields=["unit", "role"],
                condition=Q(is_active=True, role__in=["supervisor", "admin"]),
                name="user_chain_idx",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.badge})" if self.badge else self.name

    def get_full_name(self):
        return self.name

    def get_short_name(self):
        return self.name

    def get_session_auth_hash(self):
        return self._session_hash()

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret=secret)

    def _session_hash(self, secret=None):
        """Like Django's, over role and active flag too: changing either ends every session."""
        state = f"{self.password}|{self.role}|{self.is_active}"
        return salted_hmac(
            "portal.User.session_auth_hash", state, secret=secret, algorithm="sha256"
        ).hexdigest()

    @property
    def is_supervisor(self):
        return self.role == self.Role.SUPERVISOR

    @property
    def is_admin(self):
        return self.role == self.Role.ADMIN


class AuditEvent(models.Model):
    """One append-only record of something that happened.

    The application never deletes these rows and changes them once only: `audit.seal()`, after
    the event has committed, sets `seq`, `prev_hash` and `hash`. On PostgreSQL triggers refuse
    every other UPDATE, every DELETE and TRUNCATE (migrations 0004, 0005). Each sealed row's
    `hash` is an HMAC keyed by AUDIT_CHAIN_KEY over its content, its `seq` and the hash of the
    row before it, so `manage.py verify_audit` finds a row changed or removed behind the
    database's back, and with the checkpoints outside it, the newest rows removed.
    """

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_version = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, default="success")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    agency = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The agency of the actor or the object: whose admins and auditors see it.",
    )
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    seq = models.BigIntegerField(
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="Position in the hash chain; empty until the event is sealed.",
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # An object's events, and those of one action on it (an Order's last reminder by
            # hand, among its tens of thousands of acknowledgements), latest first.
            models.Index(
                fields=["object_type", "object_id", "action", "at"], name="audit_object_action_idx"
            ),
            # What the sealer reads: the events not sealed yet, oldest first.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsealed_idx"),
        ]
        permissions = [("view_audit_trail", "Can search and export the audit trail")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_type}:{self.object_id}"


class Tour(models.Model):
    """One of a unit's tours of duty, in the agency's local time. The tours of an agency's root
    unit are its default; a unit with tours of its own uses those (the nearest unit up that has
    some decides). A tour may run past midnight (Midnight 23:00-07:00)."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="tours")
    name = models.CharField(max_length=40)
    starts_at = models.TimeField("starts (local time)")
    ends_at = models.TimeField("ends (local time)")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["unit", "position", "starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["unit", "name"], name="tour_name_once_per_unit"),
        ]

    def __str__(self):
        return f"{self.name} {self.starts_at:%H:%M}-{self.ends_at:%H:%M}"


class PushSubscription(models.Model):
    """A device where a person allowed alerts (a Web Push subscription). Not evidence: removed
    when the person stops alerts there or the push service says it has expired (404 / 410)."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="push_subscriptions")
    endpoint = models.CharField(max_length=2000, unique=True)
    p256dh = models.CharField("public key (p256dh)", max_length=200)
    auth = models.CharField("auth secret", max_length=100)
    name = models.CharField(max_length=200, help_text="Named by the browser's user agent.")
    created_at = models.DateTimeField()
    last_pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "created_at"]
        indexes = [models.Index(fields=["user"], name="push_subscription_user_idx")]

    def __str__(self):
        return f"{self.name} - {self.user}"


class Lockout(models.Model):
    """Failed sign-ins (password or MFA code) for one login, known account or not.

    Keyed by the email typed, so an unknown address goes through exactly the same steps and
    gets exactly the same answer as a real one.
    """

    login = models.CharField(max_length=254, unique=True)
    failures = models.PositiveSmallIntegerField(default=0)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        state = f"locked since {self.locked_at:%Y-%m-%d %H:%M}" if self.locked_at else "open"
        return f"{self.login}: {self.failures} failure(s), {state}"
