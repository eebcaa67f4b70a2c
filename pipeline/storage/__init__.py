"""Storage stage: the database schema and its migrations, registering recordings,
and the runner that transcribes and aligns them. Imports speech and script, never review or reports."""
