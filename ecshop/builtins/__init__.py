"""The plugins that ship with ecshop, registered through its own ``ecshop.plugins``
entry points: the sandbox gateway's client, cash on delivery and bank transfer, and the
flat shipping fee example. The owner's drop-in plugins live in the plugins folder
(``ECSHOP_PLUGINS_DIR``).
"""
