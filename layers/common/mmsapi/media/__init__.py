"""Media: the MIME table, fetching behind the network guard, and adaptation."""
