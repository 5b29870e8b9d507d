"""The directory and the authorization server. Its core never imports a web framework."""
