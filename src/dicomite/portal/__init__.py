"""The web portal: server-rendered pages over the same domain functions as the CLI and Graph API."""
