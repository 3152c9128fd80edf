from django.dispatch import Signal

# Sent once per demo organization by `manage.py seed_demo`; receivers add their app's demo data idempotently.
# kwargs: organization, members (email -> Membership), stdout.
seed_demo_extend = Signal()
