"""The platform's side of the wire, played as the platform does: its sync
rules, its Task table, its Result table and its view of a task."""
