"""The web console: server-rendered pages for the people who use the hub, signed in as
named users (exchange/accounts), reading through the same services and visibility rules as
the API."""
