"""The review page, JSON API and feedback links (served by the daemon on ``web.listen``)."""
