"""The HTTP ingress: merchants create and read payments; accepted payments go to Kafka.

Entry points: :func:`ingress.app.create_app` (the aiohttp application factory),
:func:`ingress.server.run` (serve with uvloop until SIGTERM) and
:func:`ingress.auth.mint_token` (issue a merchant API token). Never imports Faust.
"""
