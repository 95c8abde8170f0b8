"""Numbered schema migrations, applied in order by `python -m control_plane migrate`.

Each module `mNNNN_<name>.py` has `apply(db)`; applied numbers are recorded in the
`schema_migration` table, so every migration runs once per database. Never edit a migration that
has shipped: add the next number (playhouse.migrate for column changes).
"""
