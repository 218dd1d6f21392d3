"""Intake: messages from outside channels (a text-message gateway) turned into submissions
on behalf of registered users, and the drafts the unreadable ones become."""
