"""Carriers: MM7 to the MMSC, SMS for fallback, and the message both are built from."""
