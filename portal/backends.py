from django.contrib.auth.backends import ModelBackend

from portal.scope import ROLE_CAPABILITIES


class RoleBackend(ModelBackend):
    """Grants the Django permissions that come with a person's role.

    Capabilities follow the role (see `portal.scope.ROLE_CAPABILITIES`); where they
    apply (the scope) is decided by `portal.scope`. Groups and per-user permissions
    still add to this through the ordinary ModelBackend.
    """

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        # What the role grants needs no query; anything else is looked up in the groups and
        # per-user permissions (two queries, cached on the user object for the request).
        if user_obj.is_active and obj is None and perm in _role_capabilities(user_obj):
            return True
        return super().has_perm(user_obj, perm, obj)

    def get_group_permissions(self, user_obj, obj=None):
        granted = super().get_group_permissions(user_obj, obj)
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return granted
        return granted | _role_capabilities(user_obj)


def _role_capabilities(user_obj):
    return ROLE_CAPABILITIES.get(getattr(user_obj, "role", None), frozenset())
