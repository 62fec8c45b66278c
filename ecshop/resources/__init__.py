"""HTTP resources: parse, call a service, render. No business rules live here."""
