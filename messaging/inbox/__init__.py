"""The inbox: conversations, ownership, visibility, notifications and the pages agents work in."""
