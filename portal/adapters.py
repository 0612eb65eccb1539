from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are provisioned by roster import or by an admin: there is no public sign-up."""

    def is_open_for_signup(self, request):
        return False
