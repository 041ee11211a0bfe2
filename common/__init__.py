"""Code shared by both tiers: the wire contract, settings, logging and the error tree.

Nothing here imports the edge agent or the cloud collector; both import this.
"""
