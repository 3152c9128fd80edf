from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenancy.models import Organization
from tenancy.services import do_create_api_token


class Command(BaseCommand):
    help = "Create an API token for USER in organization --org SLUG and print the key (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("user", help="username or email")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", default="CLI token")

    def handle(self, *args, user, org, name, **options):
        User = get_user_model()
        account = (
            User.objects.filter(username=user).first() or User.objects.filter(email__iexact=user).first()
        )
        if account is None:
            raise CommandError(f"No user '{user}'.")
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug '{org}'.")
        try:
            _token, key = do_create_api_token(account, organization, name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        self.stdout.write(key)
