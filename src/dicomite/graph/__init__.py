"""The management API in Microsoft Graph v1.0 shapes, on top of ``identity.directory``."""
