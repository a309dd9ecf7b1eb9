"""Images the gateway holds: storing and serving them, format conversion, blank detection."""
