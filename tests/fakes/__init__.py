"""Stand-ins for services the tests cannot reach (real software, run locally)."""
