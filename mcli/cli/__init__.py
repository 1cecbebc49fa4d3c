"""The `mcli` command line, built only on the public SDK.

`main` builds the parser and is the one place errors become messages and exit statuses; `commands` holds the
run commands, `lifecycle` those for clusters and a run's scheduling, `follow` follows a run live, `output` draws
tables and panels with `rich`, `completion` writes shell completion, and `common` is what they (and
`mcli.local.cli`, which owns `mcli local ...`) share.
"""
