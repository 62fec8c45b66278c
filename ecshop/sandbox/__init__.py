"""The sandbox payment provider: a separate process that behaves like a hosted-page
gateway (pay page, signed notifications with retries and fault switches, a status,
expiry and refund API). It is the shop's test mode and the reference for plugin
authors; the shop's own client for it is the built-in plugin ``ecshop.builtins.sandbox``.

``protocol`` holds what both sides share (signing and verifying); ``server`` runs it
(``ecshop sandbox-gateway``); ``app``, ``state``, ``delivery`` and ``schema`` are its
insides.
"""
