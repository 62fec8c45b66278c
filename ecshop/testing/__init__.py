"""Helpers for testing ecshop and its plugins: throwaway servers, the gateway kit."""
