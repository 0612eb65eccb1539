import factory
from django.utils import timezone

from portal.models import Unit, User

PASSWORD = "correct-horse-battery-staple"


def make_unit(name, *, parent=None, kind=None):
    """A unit under `parent` (or a new agency root)."""
    if parent is None:
        return Unit.add_root(name=name, kind=kind or Unit.Kind.AGENCY)
    return parent.add_child(name=name, kind=kind or Unit.Kind.PRECINCT)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"member{n}@agency.test")
    name = factory.Faker("name")
    badge = factory.Sequence(lambda n: f"{10000 + n}")
    rank = "Police Officer"
    member_class = User.MemberClass.SWORN
    role = User.Role.OFFICER
    date_joined = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.lazy_attribute
    def agency(self):
        if self.unit is None:
            return None
        return Unit.objects.get(path=self.unit.agency_path)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save()
