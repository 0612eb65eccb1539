import hashlib
from datetime import timedelta

from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Subquery

from portal import database
from portal.models import PushSubscription, Tour, Unit, User

DEFAULT_REVIEW_INTERVAL = timedelta(hours=72)


class BulletinQuerySet(models.QuerySet):
    def published(self):
        return self.exclude(status=Bulletin.Status.DRAFT)

    def in_force(self, now):
        """Published, taken effect and not ended - decided by the clock, not by the sweep."""
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            status__in=Bulletin.LIVE_STATUSES,
            effective_at__lte=now,
        )

    def ended(self, now):
        """What is no longer in force: lifted, expired (recorded or due by the clock)."""
        return self.filter(
            Q(status__in=[Bulletin.Status.LIFTED, Bulletin.Status.EXPIRED])
            | Q(status__in=Bulletin.LIVE_STATUSES, expires_at__lte=now)
        )

    def addressed_to(self, user):
        """Bulletins whose audience rule includes `user` now, or that told them (a recipient
        row) while they are still in the bulletin's agency. A recipient row is evidence and
        stays when the person moves on, but it lets them read only within the agency, and never
        a restricted bulletin: that one only while the audience rule includes them."""
        told_here = (
            Exists(Recipient.objects.filter(bulletin=OuterRef("pk"), user=user))
            & Q(agency_id=user.agency_id)
            & ~Q(kind=Bulletin.Kind.INTELLIGENCE)  # restricted: `is_restricted`
        )
        return self.filter(
            Exists(AudienceUnit.objects.matching(user).filter(bulletin=OuterRef("pk"))) | told_here
        )

    def search(self, text):
        """Full-text search on PostgreSQL; a plain substring match on SQLite (embedded default)."""
        return database.search(self, text, {"A": ["title"], "B": ["instruction", "body"]})

    def with_reader_state(self, user):
        """Annotates what `user` has done: `my_opened_at`, `my_ack_version`, `my_acked_at`."""
        mine = Recipient.objects.filter(bulletin=OuterRef("pk"), user=user)
        return self.annotate(
            my_opened_at=Subquery(mine.values("first_opened_at")[:1]),
            my_ack_version=Subquery(mine.values("acknowledged_version")[:1]),
            my_acked_at=Subquery(mine.values("acknowledged_at")[:1]),
        )

    def urgent_first(self):
        return self.order_by("priority", F("effective_at").desc(nulls_last=True), "-id")


class ImplementedFrom(models.TextChoices):
    """Who must report an order implemented."""

    NOBODY = "", "Nobody"
    EVERYONE = "everyone", "Everyone it is addressed to"
    SUPERVISORS = "supervisors", "Supervisors only"
    UNITS = "units", "One report per unit, by one of its supervisors"


class Approval(models.TextChoices):
    NOT_NEEDED = "", "Not needed"
    AWAITING = "awaiting", "Awaiting approval"
    SENT_BACK = "sent_back", "Sent back"
    APPROVED = "approved", "Approved"
    EMERGENCY = "emergency", "Published in an emergency - awaiting review"
    CONFIRMED = "confirmed", "Emergency publication confirmed"


class Bulletin(models.Model):
    _audience_targets = None  # `audience_targets()`, kept on the instance

    ImplementedFrom = ImplementedFrom
    Approval = Approval

    class Kind(models.TextChoices):
        ORDER = "order", "Order"
        ADVISORY = "advisory", "Advisory"
        INTELLIGENCE = "intelligence", "Intelligence"
        INFORMATION = "information", "Information"

    class Priority(models.IntegerChoices):
        IMMEDIATE = 1, "Officer safety - immediate"
        PRIORITY = 2, "Priority"
        ROUTINE = 3, "Routine"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        IN_FORCE = "in_force", "In force"
        EXPIRED = "expired", "Ended"
        LIFTED = "lifted", "Lifted"

    LIVE_STATUSES = (Status.SCHEDULED, Status.IN_FORCE)

    # CAP 1.2 urgency / severity / certainty for each priority.
    CAP_LEVELS = {
        Priority.IMMEDIATE: ("Immediate", "Extreme", "Likely"),
        Priority.PRIORITY: ("Expected", "Severe", "Likely"),
        Priority.ROUTINE: ("Future", "Moderate", "Possible"),
    }

    agency = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ORDER)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.PRIORITY)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)

    # The current text: the draft while unpublished, then a copy of the latest version.
    title = models.CharField(max_length=200)
    instruction = models.CharField("instructions", max_length=300)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True, editable=False)

    # Audience beyond the units (see AudienceUnit).
    to_sworn = models.BooleanField("sworn members", default=True)
    to_auxiliary = models.BooleanField("auxiliary members", default=True)
    to_civilian = models.BooleanField("civilian members", default=True)
    supervisors_only = models.BooleanField(default=False)

    # Time span. expires_at NULL means "until further notice".
    effective_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    review_interval = models.DurationField(default=DEFAULT_REVIEW_INTERVAL)
    next_review_at = models.DateTimeField(null=True, blank=True)
    review_requested_at = models.DateTimeField(null=True, blank=True)
    review_overdue_at = models.DateTimeField(null=True, blank=True)
    last_reaffirmed_at = models.DateTimeField(null=True, blank=True)
    last_reaffirmed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    version = models.PositiveIntegerField(default=0)
    ack_version = models.PositiveIntegerField(
        default=0, help_text="The latest material version: acknowledgements of it or later count."
    )
    issued_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    recipients_written_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the audience was resolved into recipient rows (right after publication).",
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who lifted it, or scheduled it to be lifted at expires_at.",
    )
    lift_reason = models.TextField(blank=True)
    is_exercise = models.BooleanField(
        "exercise",
        default=False,
        help_text="Training, not a real order: marked EXERCISE everywhere and counted apart. "
        "Set when it is written; an exercise never becomes a real order.",
    )
    template_version = models.ForeignKey(
        "TemplateVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The template version it was started from, if any.",
    )
    supersedes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="superseded_by",
        help_text="Earlier bulletins its publication lifts, in the same transaction.",
    )

    # What the reader signs and answers (issue "Hearing back from the field"); copied into
    # each version, so a material amendment may change them and a receipt records what was
    # signed.
    statement = models.CharField(
        "statement the reader signs",
        max_length=300,
        blank=True,
        help_text="Empty: the agency's default statement.",
    )
    implemented_from = models.CharField(
        "report implemented",
        max_length=16,
        choices=ImplementedFrom.choices,
        blank=True,
        default=ImplementedFrom.NOBODY,
    )
    implemented_prompt = models.CharField(
        "what to report", max_length=200, blank=True,
        help_text='For example "Armed officer posted at each public entrance".',
    )  # fmt: skip
    questions = models.JSONField(
        "check of understanding",
        default=list,
        blank=True,
        help_text='Up to three: [{"question": ..., "choices": [...], "answer": index}].',
    )

    # Command governance: topic, approval, emergency publication.
    topic = models.ForeignKey(
        "Topic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    does_not_relax = models.BooleanField(
        "my order does not relax it",
        default=False,
        help_text="The author's word that it does not relax a higher command's order in force "
        "on the same topic.",
    )
    approval = models.CharField(
        max_length=16, choices=Approval.choices, blank=True, default=Approval.NOT_NEEDED
    )
    approved_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    emergency_reason = models.TextField(blank=True)
    emergency_review_due_at = models.DateTimeField(
        null=True, blank=True, help_text="An emergency publication not yet confirmed or lifted."
    )

    objects = BulletinQuerySet.as_manager()

    class Meta:
        permissions = [
            ("author_bulletin", "Can write, publish, amend and lift bulletins in scope"),
            ("view_coverage", "Can see acknowledgement coverage in scope"),
        ]
        indexes = [
            models.Index(fields=["status", "effective_at"], name="bulletin_status_effective_idx"),
            models.Index(fields=["status", "expires_at"], name="bulletin_status_expires_idx"),
            # The sweep's look for emergency publications not reviewed in time.
            models.Index(
                fields=["emergency_review_due_at"],
                condition=Q(emergency_review_due_at__isnull=False),
                name="bulletin_emergency_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True)
                | Q(effective_at__isnull=True)
                | Q(expires_at__gt=F("effective_at")),
                name="bulletin_ends_after_it_takes_effect",
            ),
            models.CheckConstraint(
                condition=Q(ack_version__lte=F("version")),
                name="bulletin_ack_version_is_a_published_version",
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def requires_acknowledgement(self):
        return self.kind == self.Kind.ORDER

    @property
    def is_restricted(self):
        return self.kind == self.Kind.INTELLIGENCE

    @property
    def is_until_further_notice(self):
        return self.expires_at is None

    @property
    def member_classes(self):
        return [c for c in User.MemberClass.values if getattr(self, f"to_{c}")]

    def audience_targets(self):
        """[(unit, include_subtree)], read once per instance (publishing asks several times);
        whoever writes the audience rows calls `audience_changed()`."""
        if self._audience_targets is None:
            rows = self.audience.select_related("unit")
            self._audience_targets = [(row.unit, row.include_subtree) for row in rows]
        return list(self._audience_targets)

    def audience_changed(self):
        self._audience_targets = None

    def members(self):
        return audience_members(
            self.audience_targets(),
            classes=self.member_classes,
            supervisors_only=self.supervisors_only,
        )

    @property
    def cap_levels(self):
        return self.CAP_LEVELS[self.priority]

    def is_addressed_to(self, user):
        """`Bulletin.objects.addressed_to(user)` for this one bulletin, in the cheap order: a
        recipient row (one index lookup) answers for almost everyone; the audience rule only for
        someone not told yet, someone who left the agency, or a restricted bulletin."""
        told_here = (
            self.agency_id == user.agency_id
            and not self.is_restricted
            and Recipient.objects.filter(bulletin_id=self.pk, user_id=user.pk).exists()
        )
        return told_here or AudienceUnit.objects.matching(user).filter(bulletin_id=self.pk).exists()

    def is_acknowledged_by_reader(self):
        """With `with_reader_state`: the reader acknowledged the latest material version."""
        ack = getattr(self, "my_ack_version", None)
        return ack is not None and ack >= self.ack_version

    def needs_reader_acknowledgement(self):
        return self.requires_acknowledgement and not self.is_acknowledged_by_reader()

    def state_at(self, now):
        """The state a reader sees at `now`: the clock decides, not the last recorded status."""
        if self.status in (self.Status.DRAFT, self.Status.LIFTED, self.Status.EXPIRED):
            return self.status
        if self.effective_at and self.effective_at > now:
            return self.Status.SCHEDULED
        if self.expires_at and self.expires_at <= now:
            return self.Status.LIFTED if self.lifted_by_id else self.Status.EXPIRED
        return self.Status.IN_FORCE


class AudienceUnitQuerySet(models.QuerySet):
    def matching(self, user):
        """Audience rows that include `user` by unit, member class and role."""
        if not user.unit_id:
            return self.none()
        unit_path = user.unit.path
        steplen = Unit.steplen
        ancestors_and_self = [
            unit_path[:end] for end in range(steplen, len(unit_path) + 1, steplen)
        ]
        rows = self.filter(
            Q(include_subtree=True, unit__path__in=ancestors_and_self) | Q(unit_id=user.unit_id),
            **{f"bulletin__to_{user.member_class}": True},
        )
        if user.role == User.Role.OFFICER:
            rows = rows.filter(bulletin__supervisors_only=False)
        return rows


def audience_members(targets, *, classes, supervisors_only):
    """Active people reached by an audience: `targets` is [(unit, include_subtree), ...].

    The same rule as `AudienceUnitQuerySet.matching`, seen from the bulletin's side.
    """
    if not targets or not classes:
        return User.objects.none()
    reach = Q()
    for unit, include_subtree in targets:
        reach |= Q(unit__path__startswith=unit.path) if include_subtree else Q(unit_id=unit.pk)
    members = User.objects.filter(reach, is_active=True, member_class__in=classes).order_by()
    if supervisors_only:
        members = members.exclude(role=User.Role.OFFICER)
    return members


class AudienceUnit(models.Model):
    bulletin = models.ForeignKey(Bulletin, on_delete=models.CASCADE, related_name="audience")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    include_subtree = models.BooleanField(default=True)

    objects = AudienceUnitQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bulletin", "unit"], name="audience_names_a_unit_once"),
        ]

    def __str__(self):
        return f"{self.unit} (and below)" if self.include_subtree else str(self.unit)


class BulletinVersion(models.Model):
    """A published text. Immutable: an amendment makes a new version."""

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    instruction = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Bulletin.Kind.choices)
    priority = models.PositiveSmallIntegerField(choices=Bulletin.Priority.choices)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    is_material = models.BooleanField(default=True)
    reason = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    statement = models.CharField(max_length=300, blank=True)
    implemented_from = models.CharField(
        max_length=16, choices=ImplementedFrom.choices, blank=True, default=""
    )
    implemented_prompt = models.CharField(max_length=200, blank=True)
    questions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who approved this version, when it needed a second person.",
    )

    class Meta:
        ordering = ["bulletin", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["bulletin", "number"], name="version_number_once_per_bulletin"
            ),
        ]

    def __str__(self):
        return f"{self.title} (v{self.number})"

    @staticmethod
    def hash_content(*, title, instruction, body, kind, priority):
        canonical = "\x1f".join([title, instruction, body, str(kind), str(priority)])
        return hashlib.sha256(canonical.encode()).hexdigest()


class Recipient(models.Model):
    """Who was told: one row per person and bulletin, written when the audience is resolved.

    Evidence: never deleted. The acknowledgement fields summarise the Receipt rows for fast
    dashboards.
    """

    # The keys are covered by the composite indexes below: no single-column index to maintain
    # on the 36,000-row inserts of a publication. Recipients are always looked up by bulletin
    # or by person; by unit only with the bulletin, through (bulletin, unit). (Deleting a unit
    # reads the table once for its PROTECT check; units are moved, rarely deleted.)
    bulletin = models.ForeignKey(
        Bulletin, on_delete=models.PROTECT, related_name="recipients", db_index=False
    )
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    unit = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        db_index=False,
        help_text="The person's unit when they were told.",
    )
    added_at = models.DateTimeField()
    first_opened_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_version = models.PositiveIntegerField(null=True, blank=True)
    acknowledged_method = models.CharField(
        max_length=16,
        blank=True,
        db_default="",
        help_text="How the last acknowledgement was made (Receipt.Method); counted apart.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bulletin", "user"], name="recipient_once_per_person_and_bulletin"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "bulletin"], name="recipient_user_idx"),
            models.Index(fields=["bulletin", "unit"], name="recipient_bulletin_unit_idx"),
        ]

    def __str__(self):
        return f"{self.user} - {self.bulletin}"

    def obligation_at(self, now):
        """Plain words for where this person stands. An obligation closes with its bulletin:
        nothing is written when a bulletin ends, the state follows from the clock."""
        bulletin = self.bulletin
        acknowledged = self.acknowledged_version
        if acknowledged is not None and acknowledged >= bulletin.ack_version:
            return "acknowledged"
        if bulletin.state_at(now) in (Bulletin.Status.LIFTED, Bulletin.Status.EXPIRED):
            return "ended before acknowledged"
        if acknowledged is not None:
            return f"acknowledged v{acknowledged} only"
        return "outstanding"


class Receipt(models.Model):
    """What one person did with one version: opened it, and (Orders) acknowledged it.

    Evidence: never deleted; filled once, never overwritten.
    """

    version = models.ForeignKey(BulletinVersion, on_delete=models.PROTECT, related_name="+")
    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="receipts")
    # Looked up by person through the unique (user, version) key: no index of its own to
    # maintain on every acknowledgement.
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    opened_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    statement = models.CharField(max_length=300, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    auth_method = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Method(models.TextChoices):
        PORTAL = "", "In the portal"
        OFFLINE = "offline", "On the device while offline"
        ROLL_CALL = "roll_call", "Briefed at roll call, co-signed"
        PAPER = "paper", "Signed on paper, recorded by the sergeant"

    method = models.CharField(max_length=16, blank=True, choices=Method.choices, db_default="")
    acknowledged_on_device_at = models.DateTimeField(
        null=True, blank=True, help_text="Offline: the device's time when Acknowledge was pressed."
    )
    client_id = models.UUIDField(
        null=True, blank=True, help_text="Offline: made by the device; the same id records once."
    )
    roll_call = models.ForeignKey(
        "RollCall", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    recorded_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="Paper: the supervisor who recorded the signature.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "version"], name="ack_once_per_person_and_version"
            ),
            models.UniqueConstraint(
                fields=["client_id"],
                condition=Q(client_id__isnull=False),
                name="receipt_client_id_once",
            ),
        ]

    def __str__(self):
        return f"{self.user} - {self.version}"


def attachment_path(instance, filename):
    return f"attachments/{instance.bulletin_id}/{instance.sha256}"


class Attachment(models.Model):
    MAX_BYTES = 10 * 1024 * 1024
    MAX_PER_BULLETIN = 5

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(upload_to=attachment_path)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self):
        return self.name


class NotificationEvent(models.Model):
    """The outbox: one row per event, written in the transaction of the transition. A Celery task
    fans it out to one Notification per person after commit."""

    class Event(models.TextChoices):
        PUBLISHED = "published", "New bulletin"
        AMENDED = "amended", "Changed - acknowledge again"
        CORRECTED = "corrected", "Corrected"
        LIFTED = "lifted", "Lifted"
        ENDED = "ended", "Directive ended"
        REVIEW = "review", "Review requested"
        REVIEW_OVERDUE = "review_overdue", "Review overdue"
        REMINDER = "reminder", "Reminder"
        ESCALATION = "escalation", "Escalation"
        CANNOT_COMPLY = "cannot_comply", "Cannot comply"
        CANNOT_COMPLY_ESCALATED = "cc_escalated", "Cannot comply - not resolved"
        CANNOT_COMPLY_RESOLVED = "cc_resolved", "Cannot comply - resolved"
        APPROVAL_REQUESTED = "approval", "Awaiting your approval"
        SENT_BACK = "sent_back", "Sent back"
        APPROVED = "approved", "Approved"
        EMERGENCY = "emergency", "Published in an emergency"
        EMERGENCY_LATE = "emergency_late", "Emergency publication not reviewed"
        CONFLICT = "conflict", "A lower command's order on your topic"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=16, choices=Event.choices)
    key = models.CharField(
        max_length=64, blank=True, help_text="Tells one occurrence of the event from another."
    )
    version = models.PositiveIntegerField()
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bulletin", "event", "key"], name="notification_event_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(fanned_out_at__isnull=True),
                name="notification_event_pending_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_event_display()} - {self.bulletin}"


class Notification(models.Model):
    """One message to one person for one event. The unique key makes "never twice" a fact."""

    event = models.ForeignKey(
        NotificationEvent, on_delete=models.PROTECT, related_name="notifications"
    )
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "user"], name="notification_once_per_person_and_event"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(sent_at__isnull=True),
                name="notification_unsent_idx",
            ),
        ]

    def __str__(self):
        return f"{self.event} - {self.user}"


class Reminder(models.Model):
    """One step of chasing an unacknowledged Order: step 0 reminds the person, step 1 tells
    their unit's supervisors, step 2 the next unit up, and so on. Each step happens once per
    person and material version."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="reminders")
    version = models.PositiveIntegerField(help_text="The material version being chased.")
    step = models.PositiveSmallIntegerField()
    unit = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="For escalations: the unit whose supervisors were told.",
    )
    is_manual = models.BooleanField(default=False)
    sent_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "version", "step"],
                condition=Q(is_manual=False),
                name="reminder_step_once_per_person_and_version",
            ),
        ]
        indexes = [models.Index(fields=["recipient", "version"], name="reminder_recipient_idx")]

    def __str__(self):
        return f"{self.recipient} v{self.version} step {self.step}"


class ApiToken(models.Model):
    """A personal token for other systems: it acts as its person, never with more rights than
    they had when it was made (`capabilities`), and stops working once their password or role
    changes (`owner_fingerprint`).

    Only the SHA-256 of the secret is stored; the secret is shown once, when it is made.
    """

    DEFAULT_LIFETIME = timedelta(days=90)
    MAX_LIFETIME = timedelta(days=90)
    PREFIX_LENGTH = 8

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="The secret's first characters.")
    secret_hash = models.CharField(max_length=64, unique=True)
    is_read_only = models.BooleanField(default=True)
    capabilities = models.JSONField(
        default=list, blank=True, help_text="The owner's permissions when it was made."
    )
    owner_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the owner's password hash and role when it was made."
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")),
                name="api_token_expires_after_it_is_made",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}...)"

    @staticmethod
    def hash_secret(secret):
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def fingerprint_of(user):
        """Changes whenever the person's password, role or superuser status does."""
        state = f"{user.password}|{user.role}|{user.is_superuser}"
        return hashlib.sha256(state.encode()).hexdigest()

    def state_at(self, now, owner_fingerprint=None):
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if owner_fingerprint is not None and owner_fingerprint != self.owner_fingerprint:
            return "stopped"
        return "active"


class BulletinTemplate(models.Model):
    """A bulletin an agency issues again and again (the pairing order, auxiliaries off patrol,
    ...), kept by its admins. Its content lives in versions: a bulletin records the version it
    was started from, and a later edit of the template never changes what that bulletin was."""

    agency = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "name"], name="template_name_per_agency")
        ]

    def __str__(self):
        return self.name


class TemplateVersion(models.Model):
    template = models.ForeignKey(
        BulletinTemplate, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    instruction = models.CharField("instructions", max_length=300)
    body = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Bulletin.Kind.choices)
    priority = models.PositiveSmallIntegerField(choices=Bulletin.Priority.choices)
    duration = models.DurationField(
        null=True, blank=True, help_text="How long it runs; empty: until further notice."
    )
    review_interval = models.DurationField(default=DEFAULT_REVIEW_INTERVAL)
    to_sworn = models.BooleanField("sworn members", default=True)
    to_auxiliary = models.BooleanField("auxiliary members", default=True)
    to_civilian = models.BooleanField("civilian members", default=True)
    supervisors_only = models.BooleanField(default=False)
    suggested_units = models.ManyToManyField(Unit, blank=True, related_name="+")
    statement = models.CharField(max_length=300, blank=True)
    implemented_from = models.CharField(
        max_length=16, choices=ImplementedFrom.choices, blank=True, default=""
    )
    implemented_prompt = models.CharField(max_length=200, blank=True)
    questions = models.JSONField(default=list, blank=True)
    topic = models.ForeignKey(
        "Topic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_once")
        ]
        ordering = ["template", "number"]

    def __str__(self):
        return f"{self.template} (version {self.number})"


class AgencyPolicy(models.Model):
    """What an agency's admins set for all its bulletins."""

    DEFAULT_STATEMENT = "I have read and understand this order."

    agency = models.OneToOneField(Unit, on_delete=models.PROTECT, related_name="+")
    statement = models.CharField(
        "default statement the reader signs", max_length=300, default=DEFAULT_STATEMENT
    )

    def __str__(self):
        return f"Policy of {self.agency}"


class AgencyListEntry(models.Model):
    """One entry of a list an agency's admins keep (Agency lists page): kept in their order,
    archived rather than deleted, so what was chosen before still reads as it did."""

    agency = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    is_archived = models.BooleanField(default=False)

    class Meta:
        abstract = True
        ordering = ["agency", "position", "id"]


class CannotComplyReason(AgencyListEntry):
    """A reason an officer may give for "I cannot comply" (demo: No partner available, ...)."""

    label = models.CharField(max_length=80)

    class Meta(AgencyListEntry.Meta):
        constraints = [
            models.UniqueConstraint(fields=["agency", "label"], name="reason_label_per_agency")
        ]

    def __str__(self):
        return self.label


class Topic(AgencyListEntry):
    """What a bulletin is about (Patrol staffing, ...): orders on one topic from different
    levels of command are compared for conflicts."""

    name = models.CharField(max_length=80)

    class Meta(AgencyListEntry.Meta):
        constraints = [
            models.UniqueConstraint(fields=["agency", "name"], name="topic_name_per_agency")
        ]

    def __str__(self):
        return self.name


class Response(models.Model):
    """An officer's answer to an order other than the acknowledgement: "I cannot comply" or
    "Implemented". Evidence like a receipt: append-only, never deleted; a cannot-comply answer
    is resolved once (the resolution fields are filled once, never overwritten)."""

    class Kind(models.TextChoices):
        CANNOT_COMPLY = "cannot_comply", "Cannot comply"
        IMPLEMENTED = "implemented", "Implemented"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="responses")
    version = models.ForeignKey(BulletinVersion, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person's unit when they answered (an implemented report speaks for it).",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.ForeignKey(
        CannotComplyReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason_label = models.CharField(max_length=80, blank=True, help_text="As the reason read.")
    detail = models.TextField(blank=True, max_length=2000)
    statement_hash = models.CharField(max_length=64, blank=True)
    auth_method = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["bulletin", "kind"], name="response_bulletin_kind_idx"),
            models.Index(fields=["user", "bulletin"], name="response_user_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(kind="cannot_comply", resolved_at__isnull=True),
                name="response_open_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.user} - {self.bulletin}"

    @property
    def is_open(self):
        return self.kind == self.Kind.CANNOT_COMPLY and self.resolved_at is None


class ResponseEscalation(models.Model):
    """One step of chasing an unresolved "cannot comply" up the chain: step 1 the next unit
    up from the person's, and so on. Each step happens once per answer."""

    response = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="escalations")
    step = models.PositiveSmallIntegerField()
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "step"], name="response_step_once")
        ]

    def __str__(self):
        return f"{self.response} step {self.step}"


class QuizAttempt(models.Model):
    """One try at a version's check of understanding. Evidence: never deleted."""

    # No index of their own for the bulletin and the person: the two below lead with them (an
    # attempt is written at each try, beside the acknowledgement: two index writes fewer).
    bulletin = models.ForeignKey(
        Bulletin, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    version = models.ForeignKey(BulletinVersion, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    answers = models.JSONField(default=list)
    passed = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["user", "version"], name="quiz_user_version_idx"),
            models.Index(fields=["bulletin", "passed"], name="quiz_bulletin_idx"),
        ]

    def __str__(self):
        return f"{self.user} - {self.version} ({'passed' if self.passed else 'wrong'})"


class ApprovalStep(models.Model):
    """The second pair of eyes, step by step: submitted, sent back, approved, published in an
    emergency, confirmed, lifted on review. Append-only, never deleted.

    A material amendment of a bulletin that needed approval waits as a step too (`proposal`:
    the amended fields) until it is approved, sent back or withdrawn."""

    class Action(models.TextChoices):
        SUBMITTED = "submitted", "Submitted for approval"
        SENT_BACK = "sent_back", "Sent back"
        APPROVED = "approved", "Approved"
        EMERGENCY = "emergency", "Published in an emergency"
        CONFIRMED = "confirmed", "Emergency publication confirmed"
        LIFTED = "lifted", "Lifted on review"
        WITHDRAWN = "withdrawn", "Withdrawn"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="approval_steps")
    action = models.CharField(max_length=16, choices=Action.choices)
    by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    comment = models.TextField(blank=True)
    proposal = models.JSONField(
        null=True, blank=True, help_text="A material amendment waiting for approval."
    )
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version the step published or concerns."
    )

    class Meta:
        ordering = ["bulletin", "at", "id"]
        indexes = [models.Index(fields=["bulletin", "at"], name="approval_step_idx")]

    def __str__(self):
        return f"{self.get_action_display()} - {self.bulletin}"


class PushDelivery(models.Model):
    """One push of one outbox event to one device: at most once (the unique key), sent by Celery
    in batches. A row is claimed before its message goes out; one claimed by a worker that died
    is never sent again (`outcome` says so), so no device is alerted twice for an event."""

    event = models.ForeignKey(NotificationEvent, on_delete=models.PROTECT, related_name="pushes")
    subscription = models.ForeignKey(
        PushSubscription, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The push service's HTTP status."
    )
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="push_once_per_device_and_event"
            ),
        ]
        indexes = [
            models.Index(
                fields=["event", "id"],
                condition=Q(claimed_at__isnull=True),
                name="push_unclaimed_idx",
            ),
        ]

    def __str__(self):
        return f"{self.event} - {self.subscription_id}"


class RollCall(models.Model):
    """A sergeant's briefing at the start of a tour: who was present, which versions were read
    out. Finished once; evidence, never deleted. Present officers co-sign with its code."""

    CODE_LENGTH = 6
    CODE_MINUTES = 30

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    tour = models.ForeignKey(Tour, on_delete=models.PROTECT, related_name="+")
    tour_name = models.CharField(max_length=40)
    tour_starts_at = models.DateTimeField(help_text="The start of the tour briefed.")
    sergeant = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    code = models.CharField("roll-call code", max_length=CODE_LENGTH, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["code"], condition=~Q(code=""), name="roll_call_code_idx"),
            models.Index(fields=["unit", "started_at"], name="roll_call_unit_idx"),
        ]

    def __str__(self):
        return f"{self.unit} {self.tour_name} roll call {self.started_at:%Y-%m-%d %H:%M}"


class RollCallPerson(models.Model):
    """One person of the tour's roster at one roll call."""

    roll_call = models.ForeignKey(RollCall, on_delete=models.PROTECT, related_name="people")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    present = models.BooleanField(default=False)
    co_signed_at = models.DateTimeField(null=True, blank=True)
    signed_on_paper_at = models.DateTimeField(null=True, blank=True)
    paper_recorded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["roll_call", "user__name"]
        constraints = [
            models.UniqueConstraint(fields=["roll_call", "user"], name="roll_call_person_once"),
        ]

    def __str__(self):
        return f"{self.user} at {self.roll_call}"


class RollCallBriefing(models.Model):
    """One version read out at one roll call."""

    roll_call = models.ForeignKey(RollCall, on_delete=models.PROTECT, related_name="briefings")
    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(BulletinVersion, on_delete=models.PROTECT, related_name="+")
    briefed_at = models.DateTimeField()

    class Meta:
        ordering = ["roll_call", "briefed_at"]
        constraints = [
            models.UniqueConstraint(fields=["roll_call", "version"], name="roll_call_version_once"),
        ]

    def __str__(self):
        return f"{self.version} at {self.roll_call}"
