"""Twilio: SMS today (`sms`), voice next — the signature every webhook carries (`signature`) and the REST
client that sends replies (`rest`)."""
