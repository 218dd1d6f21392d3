"""Named officers of the agencies: console users, their roles, passwords, second factor and
sessions. API keys stay for systems; people sign in as users."""
