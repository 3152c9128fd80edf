"""Routes of the Twilio-compatible sandbox, mounted under /sandbox/ when QUICKSEND_SANDBOX is on."""

urlpatterns: list = []
