from django.contrib.auth.backends import ModelBackend

from bulletins.permissions import ROLE_CAPABILITIES


class RoleBackend(ModelBackend):
    """Grants the Django permissions that come with a person's role.

    Capabilities follow the role (see `bulletins.permissions.ROLE_CAPABILITIES`); where they
    apply (the scope) is decided by the permissions module. Groups and per-user permissions
    still add to this through the ordinary ModelBackend.
    """

    def authenticate(self, request, **credentials):
        return None

    def get_group_permissions(self, user_obj, obj=None):
        granted = super().get_group_permissions(user_obj, obj)
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return granted
        return granted | ROLE_CAPABILITIES.get(user_obj.role, frozenset())
