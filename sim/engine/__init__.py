"""The week: the fast engine's phases, the Mesa model that orders them, and the slow per-agent reference it is docked against."""
