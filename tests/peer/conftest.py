"""tests/peer holds the runner of the client libraries' own suites, not tests of ours."""

collect_ignore_glob = ["*"]
