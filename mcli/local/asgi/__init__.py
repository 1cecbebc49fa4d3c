"""ASGI app on one path: GraphQL over HTTP POST and over websockets in both subprotocols.

Ariadne executes every operation; this package handles transport, authentication, the limits on what a request
may cost (`mcli.local.limits`) and error framing. Cheap refusals come first: the key is checked before the body is
read, the body size before it is parsed, the token count while parsing, and the cost before validation.

`app` routes each connection and parses, validates and executes operations; `http` answers POSTs; `websocket`
serves operations over a websocket, with one class per subprotocol (`graphql_transport_ws`, `graphql_ws`);
`base` holds what they share.
"""

from mcli.local.asgi.app import MapiApp, RequestStats

__all__ = ["MapiApp", "RequestStats"]
