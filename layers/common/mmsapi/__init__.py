"""The XML MMS API domain package, shipped to Lambda as /opt/python/mmsapi."""
