"""The peewee store: database selection, models, migrations and the change log."""
