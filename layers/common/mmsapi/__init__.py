"""The XML MMS API domain package, shipped to Lambda as /opt/python/mmsapi."""

# Before anything else of the package: the environment pydantic reads (settings.py).
import mmsapi.settings  # noqa: F401
