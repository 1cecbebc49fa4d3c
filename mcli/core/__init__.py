"""The session core: one async session runs every GraphQL operation, whatever calls it.

`session` (AsyncSession: execute and subscribe, bounded by timeouts, retried by `retry`'s one decision) runs gql's
`Client` over the two transports in `transports`: queries and mutations on `http` (h11 keep-alive POSTs),
subscriptions on `websocket` (one shared socket, in either subprotocol). `errors` holds every exception mcli
raises, `keys` the care for the API key, `loop` the background event loop that serves synchronous callers, and
`collector` the garbage collector's pause while many lasting objects are made.
Nothing here knows about runs: `mcli.aio` and `mcli.sdk` build on it.
"""
