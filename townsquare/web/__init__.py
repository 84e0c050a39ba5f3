"""The web app: server-rendered pages over the same services and privacy rules as the API."""
