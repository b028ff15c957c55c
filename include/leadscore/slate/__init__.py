"""Slate's two interfaces: the query web service (read) and SFTP (write back)."""
