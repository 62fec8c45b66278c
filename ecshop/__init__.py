"""ecshop: a lightweight shop server that never loses an order and never oversells."""

__version__ = "0.1.0"
