"""Flows: what happens across the domains when a person signs in or an admin acts.

Dependencies run one way: the front doors (pages, API, admin) → ``flows`` → ``mfa``'s
domain → ``accounts``' domain → ``tenants``. A flow owns the pending sign-in
(``flows.pending``), the way on (``next``), the ``amr`` and the hand-off to a session or to
tokens (``flows.signin``), and the admin's edits that reach both domains (``flows.manage``).
"""
