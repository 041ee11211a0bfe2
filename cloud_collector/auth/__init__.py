"""Who may do what: users with argon2 passwords and Redis sessions, hashed API keys, three roles and
tenant scoping. See docs/API.md ("Access") for the model and :mod:`.policy` for the route table.

    principal.py   Role, Principal (who is asking) and what a tenant may see
    passwords.py   argon2id hashing
    keys.py        API key format and hashing
    sessions.py    browser sessions in Redis (or in memory for a single process), revocable, expiring
    ratelimit.py   failed-login limiter
    store.py       users and API keys in PostgreSQL
    policy.py      the minimum role of every route
    middleware.py  authentication + authorisation for every request
    cli.py         `signalcraft-collector users …` and `apikeys …`
"""
