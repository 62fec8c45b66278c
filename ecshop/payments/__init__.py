"""Payment gateways: the interface, the sandbox gateway and its protocol."""
