"""Business actions of the messaging app, by domain: ``twilio_accounts`` (connect, validate, sync numbers)
and ``numbers`` (labels, assignments, defaults, webhook configuration)."""
