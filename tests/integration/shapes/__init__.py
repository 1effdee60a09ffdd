"""Real-data shapes end to end, with settings only, one module each so that the suite's
two workers share them: each runs load -> build --as-of -> train --as-of -> score --as-of
through the CLI in a database of its own on the session server, and no project file is
edited."""

AS_OF = "2026-11-23"  # a Monday, the day after the tiny sample's history ends
