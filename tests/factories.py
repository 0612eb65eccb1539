import functools

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from portal.models import Unit, User

PASSWORD = "correct-horse-battery-staple"
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # tests only: any base32 secret does


def make_unit(name, *, parent=None, kind=None):
    """A unit under `parent` (or a new agency root)."""
    if parent is None:
        return Unit.objects.add_root({"name": name, "kind": kind or Unit.Kind.AGENCY})
    return Unit.objects.add_child(parent, {"name": name, "kind": kind or Unit.Kind.PRECINCT})


@functools.cache
def _password_hash():
    """PBKDF2 is slow on purpose; hash the test password once per run."""
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"member{n}@agency.test")
    name = factory.Faker("name")
    badge = factory.Sequence(lambda n: f"{10000 + n}")
    rank = "Police Officer"
    member_class = User.MemberClass.SWORN
    role = User.Role.OFFICER
    date_joined = factory.LazyFunction(timezone.now)
    password = factory.LazyFunction(lambda: _password_hash())

    @factory.lazy_attribute
    def agency(self):
        if self.unit is None:
            return None
        return Unit.objects.get(path=self.unit.agency_path)


def draft_bulletin(by, units, *, now=None, subtree=True, **fields):
    """A draft Order addressed to `units` (a unit or a list), through the authoring service."""
    from bulletins.services import authoring

    units = units if isinstance(units, list | tuple) else [units]
    values = {
        "title": "All officers paired - no solo posts until further notice",
        "instruction": "Work in pairs. No solo posts.",
        "body": "Effective immediately, **all** officers are paired.",
        "kind": "order",
        "priority": 1,
        "to_sworn": True,
        "to_auxiliary": True,
        "to_civilian": True,
        "supervisors_only": False,
        "effective_at": None,
        "expires_at": None,
    }
    values.update(fields)
    return authoring.save_draft(
        by=by, targets=[(unit, subtree) for unit in units], now=now or timezone.now(), **values
    )


def approver():
    """A superuser with no unit: approves what the approval rule asks a second person for,
    while in no audience (audience counts stay as they were). One per test database."""
    found = User.objects.filter(email="approver@agency.test").first()
    return found or UserFactory(
        email="approver@agency.test", name="Approving Officer", is_superuser=True, unit=None
    )


def approved_by_if_needed(draft, by):
    """`approved_by` for `authoring.publish_bulletin`: `approver()` where the rule asks."""
    from bulletins.services import approval

    return approver() if approval.approval_needed(draft, by) else None


def published_bulletin(by, units, *, now=None, **fields):
    from bulletins.services import authoring

    now = now or timezone.now()
    draft = draft_bulletin(by, units, now=now, **fields)
    return authoring.publish_bulletin(
        draft, by=by, now=now, approved_by=approved_by_if_needed(draft, by)
    )
